//! The Docker backend (stub until the next commit).
use async_trait::async_trait;

use super::{BackendKind, LaunchSpec, Process, Sandbox, SandboxConfig, SandboxError};

pub struct DockerSandbox {}

impl DockerSandbox {
    pub async fn connect(_cfg: &SandboxConfig) -> Result<DockerSandbox, SandboxError> {
        Err(SandboxError::NoDocker {
            detail: "not yet".into(),
        })
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }
    async fn launch(&self, _spec: LaunchSpec) -> Result<Process, SandboxError> {
        unimplemented!()
    }
    async fn reap_orphans(&self, _workspace: &str) -> Result<usize, SandboxError> {
        Ok(0)
    }
}
