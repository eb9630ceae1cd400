//! STUB until the emulator branch lands.
use std::net::SocketAddr;
use std::path::Path;

/// Flags.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Config {
    /// Address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}
/// Seed.
pub struct Seed;
impl Seed {
    /// Load.
    pub fn from_path(_p: &Path) -> anyhow::Result<Seed> {
        Ok(Seed)
    }
    /// Parse.
    pub fn from_json(_s: &str) -> anyhow::Result<Seed> {
        Ok(Seed)
    }
}
/// Running.
pub struct Emulator;
impl Emulator {
    /// Start.
    pub async fn start(_c: Config, _s: Seed) -> anyhow::Result<Emulator> {
        anyhow::bail!("stub")
    }
    /// Addr.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }
    /// Url.
    pub fn base_url(&self) -> String {
        String::new()
    }
    /// Stop.
    pub async fn shutdown(self) {}
}
/// Run.
pub async fn run(_c: Config) -> anyhow::Result<()> {
    anyhow::bail!("stub")
}
