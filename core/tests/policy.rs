//! The apply-time authority checks one by one (`synapsor_runner::policy::apply`), against a real
//! approved proposal of the SQLite demo: the untouched job passes every check, and each kind of
//! tampering is caught by the check that owns it, with its own code.

use serde_json::{Value, json};
use synapsor_runner::apply::job_from_proposal;
use synapsor_runner::policy::ProposalState;
use synapsor_runner::policy::apply as policy;
use synapsor_runner::protocol::{JobConflictGuard, WritebackJob};
use synapsor_runner::{
    ApplyOptions, Approver, OpenOptions, Runner, StoredProposal, TrustedContext,
};

struct Approved {
    runner: Runner,
    p: StoredProposal,
    approval: Value,
    job: WritebackJob,
    _dir: tempfile::TempDir,
}

async fn approved() -> Approved {
    let dir = tempfile::tempdir().unwrap();
    synapsor_runner::demo::create_demo(dir.path()).unwrap();
    let runner = Runner::open(
        OpenOptions::config_path(dir.path().join("synapsor.runner.json"))
            .ledger(dir.path().join("ledger.db")),
    )
    .await
    .unwrap();
    let ctx = TrustedContext::from_config();
    let made = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3001", "reason": "bank error"}),
            &ctx,
        )
        .await
        .unwrap();
    runner
        .approve(
            &made.proposal_id,
            &Approver::new("lead").role("billing_lead"),
        )
        .await
        .unwrap();
    let p = runner.ledger().proposal(&made.proposal_id).await.unwrap();
    let approval = runner
        .ledger()
        .approval_record(&p.proposal_id)
        .await
        .unwrap()
        .unwrap();
    let job = job_from_proposal(&p, "sqlite", &ApplyOptions::default());
    Approved {
        runner,
        p,
        approval,
        job,
        _dir: dir,
    }
}

fn code(r: synapsor_runner::Result<impl std::fmt::Debug>) -> String {
    r.expect_err("refused").code().to_string()
}

#[tokio::test]
async fn an_untampered_job_passes_every_check() {
    let a = approved().await;
    let config = a.runner.config();
    policy::check_job(config, &a.job).unwrap();
    let cap = policy::authorize(config, &a.job, &a.p.view(), Some(&a.approval)).unwrap();
    assert_eq!(cap.name, "billing.propose_late_fee_waiver");
}

#[tokio::test]
async fn the_job_on_its_own_must_be_current_and_reviewed() {
    let a = approved().await;
    let config = a.runner.config();
    let mut job = a.job.clone();
    job.lease.expires_at = "2020-01-01T00:00:00Z".into();
    assert_eq!(
        code(policy::check_job(config, &job)),
        "WRITEBACK_LEASE_EXPIRED"
    );
    let mut job = a.job.clone();
    job.engine = "postgres".into();
    assert_eq!(code(policy::check_job(config, &job)), "ENGINE_MISMATCH");
    let mut job = a.job.clone();
    job.runner_scope.source_id = "elsewhere".into();
    assert_eq!(code(policy::check_job(config, &job)), "SOURCE_NOT_REVIEWED");
}

#[tokio::test]
async fn only_an_approved_proposal_may_be_applied() {
    let a = approved().await;
    let mut view = a.p.view();
    for state in ProposalState::ALL {
        view.state = state;
        assert_eq!(
            policy::check_state(&view).is_ok(),
            state.may_apply(),
            "{state}"
        );
    }
    view.state = ProposalState::Rejected;
    assert_eq!(code(policy::check_state(&view)), "PROPOSAL_NOT_APPROVED");
}

#[tokio::test]
async fn the_job_gets_no_more_than_its_capability_reviews() {
    let a = approved().await;
    let config = a.runner.config();
    let view = a.p.view();
    let mut job = a.job.clone();
    job.target.table = "payments".into();
    assert_eq!(
        code(policy::job_capability(config, &job, &view)),
        "CAPABILITY_MISMATCH"
    );

    let cap = policy::job_capability(config, &a.job, &view).unwrap();
    let mut job = a.job.clone();
    job.allowed_columns.push("balance_cents".into());
    assert_eq!(
        code(policy::check_within_capability(&job, cap)),
        "ALLOWLIST_WIDENED"
    );
    let mut job = a.job.clone();
    job.patch.insert("balance_cents".into(), json!(0));
    assert_eq!(
        code(policy::check_within_capability(&job, cap)),
        "PATCH_COLUMN_NOT_REVIEWED"
    );
    let mut job = a.job.clone();
    job.conflict_guard = JobConflictGuard::None;
    assert_eq!(
        code(policy::check_within_capability(&job, cap)),
        "CONFLICT_GUARD_REQUIRED"
    );
}

#[tokio::test]
async fn the_job_names_the_approved_digest_and_version() {
    let a = approved().await;
    let view = a.p.view();
    let mut job = a.job.clone();
    job.proposal_hash = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        code(policy::check_integrity(&job, &view)),
        "PROPOSAL_HASH_MISMATCH"
    );
    let mut job = a.job.clone();
    job.proposal_version += 1;
    assert_eq!(
        code(policy::check_integrity(&job, &view)),
        "PROPOSAL_VERSION_MISMATCH"
    );
    let mut edited = a.p.change_set.clone();
    edited.patch.insert("late_fee_cents".into(), json!(1));
    let mut view = a.p.view();
    view.change_set = &edited;
    assert_eq!(
        code(policy::check_integrity(&a.job, &view)),
        "LEDGER_INTEGRITY_FAILED"
    );
}

#[tokio::test]
async fn the_recorded_approval_binds_the_digest_and_the_role() {
    let a = approved().await;
    let view = a.p.view();
    assert_eq!(
        code(policy::check_approval(&view, None)),
        "APPROVAL_MISSING"
    );
    let mut other = a.approval.clone();
    other["proposal_hash"] = json!("sha256:other");
    assert_eq!(
        code(policy::check_approval(&view, Some(&other))),
        "APPROVAL_DIGEST_MISMATCH"
    );
    let mut roleless = a.approval.clone();
    roleless["roles"] = json!(["support"]);
    assert_eq!(
        code(policy::check_approval(&view, Some(&roleless))),
        "APPROVER_ROLE_MISSING"
    );
}

#[tokio::test]
async fn the_job_is_the_approved_proposal_field_by_field() {
    let a = approved().await;
    let config = a.runner.config();
    let view = a.p.view();
    let cap = policy::job_capability(config, &a.job, &view).unwrap();
    policy::check_job_is_proposal(config, &a.job, &view, cap).unwrap();
    let mut job = a.job.clone();
    job.patch.insert("late_fee_cents".into(), json!(7));
    assert_eq!(
        code(policy::check_job_is_proposal(config, &job, &view, cap)),
        "JOB_PATCH_MISMATCH"
    );
    let mut job = a.job.clone();
    job.idempotency_key = "someone-else:INV-3001".into();
    assert_eq!(
        code(policy::check_job_is_proposal(config, &job, &view, cap)),
        "JOB_IDENTITY_MISMATCH"
    );
    let mut job = a.job.clone();
    job.tenant_guard.value = json!("globex");
    assert_eq!(
        code(policy::check_job_is_proposal(config, &job, &view, cap)),
        "JOB_TENANT_MISMATCH"
    );
}

/// The mode rules, one by one: what the model is offered, what may run here, and which
/// proposals may ever reach the source.
#[test]
fn modes_decide_what_is_offered_what_runs_and_what_is_written_back() {
    use synapsor_runner::config::{CapabilityKind::*, Mode};
    use synapsor_runner::policy::{exposed, may_run, may_write_back};
    assert!(exposed(Mode::ReadOnly, Read) && !exposed(Mode::ReadOnly, Proposal));
    for mode in [Mode::Shadow, Mode::Review] {
        assert!(exposed(mode, Read) && exposed(mode, Proposal));
        assert!(may_run(mode, Proposal).is_ok());
    }
    assert_eq!(
        may_run(Mode::ReadOnly, Proposal).unwrap_err().code(),
        "PROPOSALS_DISABLED"
    );
    assert!(may_run(Mode::ReadOnly, Read).is_ok());
    assert_eq!(
        may_run(Mode::Cloud, Read).unwrap_err().code(),
        "CLOUD_MODE_UNSUPPORTED"
    );
    assert!(may_write_back("review", "wrp_1", "approved").is_ok());
    let shadow = may_write_back("shadow", "wrp_1", "approved").unwrap_err();
    assert_eq!(shadow.code(), "SHADOW_WRITEBACK_DISABLED");
    assert!(shadow.to_string().contains("wrp_1 cannot be approved"));
    assert_eq!(
        may_write_back("read_only", "wrp_1", "converted into a writeback job")
            .unwrap_err()
            .code(),
        "READ_ONLY_WRITEBACK_DISABLED"
    );
}
