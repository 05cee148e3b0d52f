//! The stdio MCP server: rmcp's server over stdin/stdout, delegating to the endpoint.

use crate::endpoint::{self, McpEndpoint};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt};
use serde_json::Value;
use synapsor_runner::{Runner, ToolNaming, TrustedContext};

/// The stdio MCP server for one runner and one trusted context (the process's context).
#[derive(Clone)]
pub struct SynapsorMcp {
    endpoint: McpEndpoint,
    context: TrustedContext,
}

impl SynapsorMcp {
    pub fn new(runner: Runner, naming: ToolNaming, context: TrustedContext) -> Self {
        SynapsorMcp {
            endpoint: McpEndpoint::new(runner, naming),
            context,
        }
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
    /// Only the versions whose rules every transport (stdio, Streamable HTTP, the in-process
    /// endpoint) implements, so discovery and `initialize` agree with HTTP.
    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Owned(
            endpoint::SUPPORTED_PROTOCOL_VERSIONS
                .iter()
                .filter_map(|v| serde_json::from_value(Value::String((*v).into())).ok())
                .collect(),
        )
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities: ServerCapabilities = serde_json::from_value(McpEndpoint::capabilities())
            .unwrap_or_else(|_| {
                ServerCapabilities::builder()
                    .enable_tools()
                    .enable_resources()
                    .build()
            });
        let mut info = ServerConfig::new(capabilities);
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info.server_info.name = "synapsor-runner".into();
        info.server_info.version = synapsor_runner::VERSION.into();
        info.instructions = Some(endpoint::SERVER_INSTRUCTIONS.into());
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        serde_json::from_value(self.endpoint.tools_list()).map_err(internal)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let result = self
            .endpoint
            .call_tool(&request.name, args, &self.context)
            .await
            .map_err(|e| McpError::invalid_params(e.message, e.data))?;
        let result: CallToolResult = serde_json::from_value(result).map_err(internal)?;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let list = self
            .endpoint
            .list_resources(&self.context)
            .await
            .map_err(|e| McpError::internal_error(e.message, None))?;
        serde_json::from_value(list).map_err(internal)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        serde_json::from_value(self.endpoint.resource_templates()).map_err(internal)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        match self
            .endpoint
            .read_resource(&request.uri, &self.context)
            .await
        {
            Ok(value) => {
                let result: ReadResourceResult = serde_json::from_value(value).map_err(internal)?;
                Ok(result.into())
            }
            // Every miss looks the same: unknown, malformed, another tenant's or principal's.
            Err(e) => Err(McpError::resource_not_found(e.message, e.data)),
        }
    }
}
