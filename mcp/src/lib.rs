//! MCP over the core's transport-free catalog: a hand-written rmcp server handler (tools come
//! from config at runtime), served on stdio. Arguments are validated by the core, never by the
//! SDK, so reserved and unknown arguments get the core's safe envelope on every transport.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ListResourceTemplatesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use synapsor_runner::{Runner, ToolNaming, TrustedContext};

/// The MCP server for one runner and one trusted context (stdio: the process's context).
#[derive(Clone)]
pub struct SynapsorMcp {
    runner: Runner,
    naming: ToolNaming,
    context: TrustedContext,
}

impl SynapsorMcp {
    pub fn new(runner: Runner, naming: ToolNaming, context: TrustedContext) -> Self {
        SynapsorMcp {
            runner,
            naming,
            context,
        }
    }

    /// `tools/list` as JSON (MCP field names), shared by every transport.
    pub fn tools_json(&self) -> Value {
        let tools: Vec<Value> = self
            .runner
            .tools(self.naming)
            .into_iter()
            .map(|t| json!({"name": t.name, "title": t.title, "description": t.description, "inputSchema": t.input_schema, "annotations": t.annotations, "_meta": t.meta}))
            .collect();
        json!({"tools": tools})
    }

    /// Serve MCP on stdin/stdout until the client disconnects.
    pub async fn serve_stdio(self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let service = self.serve(rmcp::transport::stdio()).await?;
        service.waiting().await?;
        Ok(())
    }
}

fn internal(e: impl std::fmt::Display) -> McpError {
    McpError::internal_error(e.to_string(), None)
}

impl ServerHandler for SynapsorMcp {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        );
        info.server_info.name = "synapsor-runner".into();
        info.server_info.version = synapsor_runner::VERSION.into();
        info.instructions = Some("Reviewed database capabilities: scoped reads and proposals. Approval and writeback happen outside this server.".into());
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        serde_json::from_value(self.tools_json()).map_err(internal)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let envelope = self
            .runner
            .call_tool(&request.name, args, &self.context)
            .await;
        // Result envelope v2: every outcome, errors included, is a normal structured result.
        let result = if envelope.get("ok") == Some(&Value::Bool(false))
            && envelope.get("status").is_none()
            && envelope.get("summary").is_none()
        {
            CallToolResult::structured_error(envelope)
        } else {
            CallToolResult::structured(envelope)
        };
        Ok(result.into())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        serde_json::from_value(
            json!({"resourceTemplates": synapsor_runner::resources::templates()}),
        )
        .map_err(internal)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        match self.runner.read_resource(&request.uri, &self.context).await {
            Ok(value) => {
                let text = serde_json::to_string_pretty(&value).map_err(internal)?;
                Ok(
                    ReadResourceResult::new(vec![ResourceContents::text(
                        text,
                        request.uri.clone(),
                    )])
                    .into(),
                )
            }
            // Every miss looks the same: unknown, malformed, another tenant's or principal's.
            Err(_) => Err(McpError::resource_not_found(
                "The requested Synapsor resource was not found.",
                Some(json!({"code": "RESOURCE_NOT_FOUND"})),
            )),
        }
    }
}
