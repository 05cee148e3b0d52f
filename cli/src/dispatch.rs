//! From a parsed command line to the command that runs it.

use crate::commands::*;
use crate::shared::{config_path, usage};
use crate::{Cli, Command, ConfigCmd, ReplayCmd, ToolsCmd, WritebackCmd};
use synapsor_runner::config::Engine;
use synapsor_runner::error::Result;

pub async fn run(cli: Cli) -> Result<u8> {
    let g = cli.global;
    match cli.command {
        Command::Config {
            action: ConfigCmd::Validate { json },
        } => config_validate(&g, json),
        Command::Config {
            action: ConfigCmd::Show { redacted },
        } => crate::ledger_cmds::config_show(&g, redacted),
        Command::Config {
            action: ConfigCmd::Migrate,
        } => crate::ledger_cmds::config_migrate(&g),
        Command::Config {
            action: ConfigCmd::Schema,
        } => {
            print!("{}", synapsor_runner::config::SCHEMA_TEXT);
            Ok(0)
        }
        Command::Validate { job } => crate::ledger_cmds::validate_job(job.as_deref()),
        Command::Tools {
            action: ToolsCmd::Preview { alias_mode, json },
        } => tools_preview(&g, &alias_mode, json).await,
        Command::Inspect(a) => call(&g, a, false).await,
        Command::Propose(a) => call(&g, a, true).await,
        Command::Proposals { action } => proposals(&g, action).await,
        Command::Apply(a) => apply(&g, a).await,
        Command::Replay {
            action,
            selector,
            details,
            json,
        } => {
            let (sel, details, json) = match action {
                Some(ReplayCmd::Show {
                    selector: s,
                    proposal,
                    replay: by_replay,
                    evidence,
                    details: d,
                    json: j,
                }) => {
                    let by_evidence = match evidence {
                        Some(ev) => Some(proposal_of_evidence(&g, &ev).await?),
                        None => None,
                    };
                    (
                        proposal.or(by_replay).or(by_evidence).or(s),
                        d || details,
                        j || json,
                    )
                }
                Some(ReplayCmd::List { filter, proposals }) => {
                    return crate::ledger_cmds::replay_list(&g, filter, proposals).await;
                }
                Some(ReplayCmd::Export {
                    selector: s,
                    proposal,
                    output,
                    format,
                }) => {
                    return crate::ledger_cmds::replay_export(
                        &g,
                        proposal.or(s),
                        output.as_deref(),
                        &format,
                    )
                    .await;
                }
                None => (selector, details, json),
            };
            replay(&g, sel, details, json).await
        }
        Command::Writeback {
            action: WritebackCmd::Migration { engine },
        } => {
            let e = match engine.as_str() {
                "postgres" => Engine::Postgres,
                "sqlite" => Engine::Sqlite,
                "mysql" => Engine::Mysql,
                _ => {
                    return Err(usage(
                        "writeback command requires --engine postgres, mysql or sqlite",
                    ));
                }
            };
            println!("{};", synapsor_runner::sql::receipt_table_ddl(e));
            Ok(0)
        }
        Command::Demo {
            action: Some(crate::DemoCmd::Inspect { npx, json }),
            ..
        } => crate::demo::inspect(npx, json).await,
        Command::Demo {
            quick: true,
            details,
            json,
            ..
        } => crate::demo::quick(details, json).await,
        Command::Demo { dir, .. } => crate::demo::run(&dir).await,
        Command::Activity {
            action:
                crate::ActivityCmd::Search {
                    filter,
                    proposals,
                    replay,
                },
        } => crate::ledger_cmds::activity_search(&g, filter, proposals, replay).await,
        Command::Events { action } => crate::events::run(&g, action).await,
        Command::Smoke {
            action:
                crate::SmokeCmd::Call {
                    tool,
                    sample,
                    input,
                    json,
                },
        } => crate::smoke::call(&g, tool, sample, input.as_deref(), json).await,
        Command::Evidence { action } => crate::ledger_cmds::evidence(&g, action).await,
        Command::QueryAudit { action } => crate::ledger_cmds::query_audit(&g, action).await,
        Command::Receipts { action } => crate::ledger_cmds::receipts(&g, action).await,
        Command::Store { action } => crate::ledger_cmds::store(&g, action).await,
        Command::Schema { action } => crate::schema_cmd::run(action).await,
        Command::Init(a) => crate::init_cmd::run(a).await,
        Command::Up(a) => crate::up_cmd::run(&g, a).await,
        Command::Ui(a) => crate::ui_cmd::run(&g, a).await,
        Command::Onboard {
            action: crate::OnboardCmd::Db { init, smoke_id },
        } => crate::init_cmd::onboard(&g, init, smoke_id).await,
        Command::Recipes { action } => crate::recipes_cmd::run(action),
        Command::Reconcile { force, json } => reconcile(&g, force, json).await,
        Command::Mcp { action } => match action {
            crate::McpCmd::Serve {
                alias_mode,
                env_file,
            } => crate::mcp_cmds::serve_stdio(&g, &alias_mode, env_file.as_deref()).await,
            crate::McpCmd::ServeStreamableHttp(a) => crate::mcp_cmds::serve_http(&g, a).await,
            crate::McpCmd::Configure(a) => crate::mcp_cmds::configure(&g, &a),
            crate::McpCmd::HashToken { from_env } => crate::mcp_cmds::hash_token(&from_env),
            crate::McpCmd::Audit(a) => crate::mcp_cmds::audit_cmd(a).await,
        },
        Command::Audit(a) => crate::mcp_cmds::audit_cmd(a).await,
        Command::Benchmark { name, json } => crate::mcp_cmds::benchmark(&name, json),
        Command::Handler {
            action:
                crate::HandlerCmd::Template {
                    name,
                    output,
                    force,
                    stdout,
                    list,
                },
        } => crate::handlers::template(name.as_deref(), output, force, stdout, list),
        Command::Doctor {
            check_handlers,
            check_writeback,
            json,
        } => crate::handlers::doctor(&config_path(&g), check_handlers, check_writeback, json).await,
        Command::Writeback {
            action: WritebackCmd::Doctor { check_db, json },
        } => crate::ledger_cmds::writeback_doctor(&g, check_db, json).await,
        Command::Writeback {
            action:
                WritebackCmd::Grants {
                    engine,
                    writer_role,
                    schema,
                },
        } => {
            // From the config when there is one: the user's own tables and columns.
            let loaded = synapsor_runner::config::load_config(config_path(&g)).ok();
            println!(
                "{}",
                crate::handlers::grants(
                    &engine,
                    &writer_role,
                    schema.as_deref(),
                    loaded.as_ref().map(|l| &l.config)
                )?
            );
            Ok(0)
        }
    }
}
