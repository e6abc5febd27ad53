//! EMR-shaped step types shared by every step runner.
//!
//! The local runner follows the same life cycle as EMR, so the orchestration and polling code
//! is written once against these types.

use serde::{Deserialize, Serialize};

/// What EMR does when a step fails (`ActionOnFailure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionOnFailure {
    TerminateJobFlow,
    TerminateCluster,
    CancelAndWait,
    Continue,
}

/// The `HadoopJarStep` of a step: `command-runner.jar` plus the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HadoopJarStep {
    pub jar: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_class: Option<String>,
}

/// An EMR `StepConfig`, as rendered from a template (same JSON field names as the EMR API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepConfig {
    pub name: String,
    pub action_on_failure: ActionOnFailure,
    pub hadoop_jar_step: HadoopJarStep,
}

/// EMR's step states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    Pending,
    CancelPending,
    Running,
    Completed,
    Cancelled,
    Failed,
    Interrupted,
}

impl StepState {
    /// True once the step will not change state again.
    pub fn is_terminal(self) -> bool {
        matches!(self, StepState::Completed | StepState::Cancelled | StepState::Failed | StepState::Interrupted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "PENDING",
            StepState::CancelPending => "CANCEL_PENDING",
            StepState::Running => "RUNNING",
            StepState::Completed => "COMPLETED",
            StepState::Cancelled => "CANCELLED",
            StepState::Failed => "FAILED",
            StepState::Interrupted => "INTERRUPTED",
        }
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// EMR's `FailureDetails` of a failed step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureDetails {
    pub reason: Option<String>,
    pub message: Option<String>,
    pub log_file: Option<String>,
}

/// One step as a runner reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStatus {
    pub id: String,
    pub name: String,
    pub state: StepState,
    pub failure: Option<FailureDetails>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
}
