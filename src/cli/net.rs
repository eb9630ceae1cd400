//! The flags of the commands that talk to Segment (`plan`, `apply`, `verify`): where the API
//! is, where the token comes from, and how fast to go.

use std::path::PathBuf;

use clap::Args;

/// The network flags of the commands that talk to Segment.
#[derive(Debug, Args, Clone, Default)]
pub struct NetArgs {
    /// Pacing.
    #[command(flatten)]
    pub pace: PaceArgs,
    /// Endpoint and token.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// How to reach Segment.
#[derive(Debug, Args, Clone, Default)]
pub struct ApiArgs {
    /// API base URL (default: from the manifest's region; also `IDPRUNE_API_URL`).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Read the access token from this file instead of `SEGMENT_ACCESS_TOKEN`.
    #[arg(long, value_name = "PATH", conflicts_with = "token_stdin")]
    pub token_file: Option<PathBuf>,
    /// Read the access token from standard input.
    #[arg(long)]
    pub token_stdin: bool,
    /// Allow a plain-http API URL that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
}

/// Pacing flags shared by `plan` and `apply`.
#[derive(Debug, Args, Clone)]
pub struct PaceArgs {
    /// Requests per second for the whole space, reads and deletes together (0: unlimited).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub rate: u32,
    /// Requests in flight at most. The window actually used is sized to the rate times the
    /// observed latency (100/s at 1 s latency: about 150), up to this cap; raise it for
    /// latencies over about 1.5 s.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
}

impl Default for PaceArgs {
    fn default() -> Self {
        Self {
            rate: 100,
            concurrency: 256,
        }
    }
}
