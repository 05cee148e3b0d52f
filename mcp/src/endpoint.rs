//! `McpEndpoint`: MCP as JSON in, JSON out, for one message at a time.
//!
//! This is the embedding hook: a host application serves MCP from its own HTTP route, decides
//! tenant and principal with its own authentication, and passes them here as a
//! [`TrustedContext`]. The Streamable HTTP server, the Python binding and the Node binding all
//! go through it; the stdio server (rmcp) calls the same functions below, so every transport
//! lists the same tools and returns the same results.

use serde_json::{Map, Value, json};
use synapsor_runner::config::RunnerConfig;
use synapsor_runner::{Runner, ToolNaming, TrustedContext};

/// Protocol versions we speak, newest first. An unknown requested version gets the newest.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] =
    &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

pub(crate) const SERVER_INSTRUCTIONS: &str = "Reviewed database capabilities: scoped reads and proposals. Approval and writeback happen outside this server.";

/// JSON-RPC error codes used here.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    /// MCP's "resource not found".
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
}

/// MCP for one runner and one naming style. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct McpEndpoint {
    runner: Runner,
    naming: ToolNaming,
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
    fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

/// The error every missed resource read gets: unknown, malformed, another tenant's or principal's.
pub(crate) fn resource_not_found() -> RpcError {
    RpcError {
        code: codes::RESOURCE_NOT_FOUND,
        message: "The requested Synapsor resource was not found.".into(),
        data: Some(json!({"code": "RESOURCE_NOT_FOUND"})),
    }
}

/// A JSON-RPC error response.
pub fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

impl McpEndpoint {
    pub fn new(runner: Runner, naming: ToolNaming) -> Self {
        McpEndpoint { runner, naming }
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    pub fn naming(&self) -> ToolNaming {
        self.naming
    }

    /// The `initialize` result for a requested protocol version.
    pub fn initialize_result(&self, requested: Option<&str>) -> Value {
        let version = negotiate_version(requested);
        json!({
            "protocolVersion": version,
            "capabilities": Self::capabilities(),
            "serverInfo": {"name": "synapsor-runner", "version": synapsor_runner::VERSION},
            "instructions": SERVER_INSTRUCTIONS,
        })
    }

    /// `tools/list` result (MCP field names).
    pub fn tools_list(&self) -> Value {
        tools_json(self.runner.config(), self.naming)
    }

    /// `tools/call` result: the result envelope as `structuredContent` plus a text block.
    /// Every failed or refused call (`ok: false`: an argument refused, another tenant's row, a
    /// policy violation) is `isError: true` and still carries the structured envelope that
    /// matches the tool's `outputSchema`. A tool this endpoint does not expose is a JSON-RPC
    /// error (`-32602`), as MCP 2025-11-25 specifies, not a tool result.
    pub async fn call_tool(
        &self,
        name: &str,
        args: Value,
        ctx: &TrustedContext,
    ) -> Result<Value, RpcError> {
        let exposed = synapsor_runner::agent::tools::tool_list(self.runner.config(), self.naming)
            .iter()
            .any(|t| t.name == name);
        if !exposed {
            return Err(RpcError {
                code: codes::INVALID_PARAMS,
                message: format!("Unknown tool: {}", truncate(name, 80)),
                data: Some(json!({"code": "CAPABILITY_NOT_FOUND"})),
            });
        }
        let envelope = synapsor_runner::agent::call_tool(&self.runner, name, args, ctx).await;
        let is_error = envelope.get("ok") == Some(&Value::Bool(false));
        let text = serde_json::to_string(&envelope).unwrap_or_default();
        Ok(json!({
            "content": [{"type": "text", "text": text}],
            "structuredContent": envelope,
            "isError": is_error,
        }))
    }

    /// `resources/list` result: the caller's own recent proposals.
    pub async fn list_resources(&self, ctx: &TrustedContext) -> Result<Value, RpcError> {
        synapsor_runner::agent::resources::list(&self.runner, ctx)
            .await
            .map_err(|_| RpcError::new(-32603, "Internal error"))
    }

    /// The server capabilities, the same on every transport.
    pub fn capabilities() -> Value {
        json!({"tools": {"listChanged": false}, "resources": {"subscribe": false, "listChanged": false}})
    }

    /// `resources/templates/list` result.
    pub fn resource_templates(&self) -> Value {
        json!({"resourceTemplates": synapsor_runner::agent::resources::templates()})
    }

    /// `resources/read` result, re-authorised for this caller.
    pub async fn read_resource(&self, uri: &str, ctx: &TrustedContext) -> Result<Value, RpcError> {
        let value = synapsor_runner::agent::resources::read(&self.runner, uri, ctx)
            .await
            .map_err(|_| resource_not_found())?;
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        Ok(json!({"contents": [{"uri": uri, "mimeType": "application/json", "text": text}]}))
    }

    /// Handle one JSON-RPC message (or a batch array) under the caller's trusted context.
    ///
    /// Returns the response to send, or `None` for notifications and client responses.
    /// Malformed input gets a JSON-RPC error response, never a panic.
    pub async fn handle(&self, message: &Value, ctx: &TrustedContext) -> Option<Value> {
        match message {
            Value::Array(items) if items.is_empty() => Some(error_response(
                Value::Null,
                codes::INVALID_REQUEST,
                "Invalid Request: empty batch",
            )),
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    if let Some(r) = self.handle_one(item, ctx).await {
                        out.push(r);
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            other => self.handle_one(other, ctx).await,
        }
    }

    /// [`handle`](Self::handle) on text: parse errors become a `-32700` response.
    pub async fn handle_str(&self, message: &str, ctx: &TrustedContext) -> Option<String> {
        let response = match serde_json::from_str::<Value>(message) {
            Ok(v) => self.handle(&v, ctx).await,
            Err(_) => Some(error_response(
                Value::Null,
                codes::PARSE_ERROR,
                "Parse error",
            )),
        };
        response.map(|r| r.to_string())
    }

    async fn handle_one(&self, message: &Value, ctx: &TrustedContext) -> Option<Value> {
        let Some(obj) = message.as_object() else {
            return Some(error_response(
                Value::Null,
                codes::INVALID_REQUEST,
                "Invalid Request: a JSON-RPC message must be an object",
            ));
        };
        let id = obj.get("id").cloned();
        let Some(method) = obj.get("method").and_then(Value::as_str) else {
            // A response from the client (to a request we never send) or junk: nothing to answer
            // unless it carries an id and no result/error.
            return match id {
                Some(id) if !obj.contains_key("result") && !obj.contains_key("error") => {
                    Some(error_response(
                        id,
                        codes::INVALID_REQUEST,
                        "Invalid Request: method is required",
                    ))
                }
                _ => None,
            };
        };
        // Notifications (no id) are acknowledged by silence.
        let id = id?;
        if !matches!(id, Value::String(_) | Value::Number(_)) {
            return Some(error_response(
                Value::Null,
                codes::INVALID_REQUEST,
                "Invalid Request: id must be a string or a number",
            ));
        }
        let empty = Map::new();
        let params = obj
            .get("params")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let result = self.dispatch(method, params, ctx).await;
        Some(match result {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}),
        })
    }

    async fn dispatch(
        &self,
        method: &str,
        params: &Map<String, Value>,
        ctx: &TrustedContext,
    ) -> Result<Value, RpcError> {
        match method {
            "initialize" => {
                Ok(self.initialize_result(params.get("protocolVersion").and_then(Value::as_str)))
            }
            "ping" => Ok(json!({})),
            "tools/list" => Ok(self.tools_list()),
            "tools/call" => {
                let name = params.get("name").and_then(Value::as_str).ok_or_else(|| {
                    RpcError::new(codes::INVALID_PARAMS, "tools/call requires params.name.")
                })?;
                let args = params.get("arguments").cloned().unwrap_or(Value::Null);
                self.call_tool(name, args, ctx).await
            }
            "resources/list" => self.list_resources(ctx).await,
            "resources/templates/list" => Ok(self.resource_templates()),
            "resources/read" => {
                let uri = params.get("uri").and_then(Value::as_str).ok_or_else(|| {
                    RpcError::new(codes::INVALID_PARAMS, "resources/read requires params.uri.")
                })?;
                self.read_resource(uri, ctx).await
            }
            "prompts/list" => Ok(json!({"prompts": []})),
            _ => Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {}", truncate(method, 80)),
            )),
        }
    }
}

/// `tools/list` result for a config, without opening a runner (used by the audit too).
pub fn tools_json(config: &RunnerConfig, naming: ToolNaming) -> Value {
    let tools: Vec<Value> = synapsor_runner::agent::tools::tool_list(config, naming)
        .into_iter()
        .map(|t| json!({"name": t.name, "title": t.title, "description": t.description, "inputSchema": t.input_schema, "outputSchema": t.output_schema, "annotations": t.annotations, "_meta": t.meta}))
        .collect();
    json!({"tools": tools})
}

/// The version to answer `initialize` with.
pub fn negotiate_version(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| SUPPORTED_PROTOCOL_VERSIONS.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(SUPPORTED_PROTOCOL_VERSIONS[0])
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
