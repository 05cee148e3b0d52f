//! MCP over the core's transport-free catalog.
//!
//! - [`McpEndpoint`]: JSON in, JSON out, one message at a time, under a caller-supplied trusted
//!   context — the embedding hook for host applications and the bindings.
//! - [`SynapsorMcp`]: a hand-written rmcp server handler (tools come from config at runtime)
//!   served on stdio, delegating to the endpoint's functions.
//! - [`http`]: the hardened Streamable HTTP server.
//! - [`audit`]: the static MCP risk audit.
//!
//! Arguments are validated by the core, never by the SDK, so reserved and unknown arguments get
//! the core's safe envelope on every transport.

#[cfg(feature = "audit")]
pub mod audit;
pub mod endpoint;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "stdio")]
mod stdio;
#[cfg(feature = "stdio")]
pub use stdio::*;

pub use endpoint::McpEndpoint;
