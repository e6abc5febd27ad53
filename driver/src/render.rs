//! Rendering of the handlebars templates into EMR request JSON.
//!
//! Strict mode: a variable the template uses but the plan does not set is an error, never an
//! empty string. Values are escaped for JSON string context (quotes, backslashes, control
//! characters) and nothing else, so `==`, `&` or `<` in a value come out exactly as given:
//! handlebars' default HTML escaping would turn them into entities.
//!
//! The pipeline's step templates are embedded in the one table of steps,
//! [`crate::pipeline::steps::STEPS`].

use handlebars::Handlebars;
use serde_json::Value;

use crate::error::{ExitCode, ExitStatus};
use crate::step::StepConfig;

pub const CLUSTER_TEMPLATE_NAME: &str = "cluster.json.hbs";
pub const CLUSTER_TEMPLATE: &str = include_str!("../templates/cluster.json.hbs");

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("could not read the template {path}: {source}; check the path")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template {name}: {message}; set the variable in the plan or pass it with --var key=value")]
    Template { name: String, message: String },
    #[error("template {name} did not render to valid {what}: {message}; check the template's quoting and commas")]
    Shape { name: String, what: &'static str, message: String },
}

impl ExitStatus for RenderError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::BadInput
    }
}

/// Escapes a value for the inside of a JSON string literal.
pub fn json_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string always serialises");
    quoted[1..quoted.len() - 1].to_string()
}

/// A handlebars registry in strict mode with JSON-string escaping.
pub fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(json_escape);
    hb
}

/// Renders `template` (named `name` in errors) with `vars` and parses the result as JSON.
pub fn render_json(name: &str, template: &str, vars: &Value) -> Result<Value, RenderError> {
    let text = registry()
        .render_template(template, vars)
        .map_err(|e| RenderError::Template { name: name.to_string(), message: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| RenderError::Shape {
        name: name.to_string(),
        what: "JSON",
        message: e.to_string(),
    })
}

/// Renders a step template into an EMR `StepConfig`.
pub fn render_step(name: &str, template: &str, vars: &Value) -> Result<StepConfig, RenderError> {
    let json = render_json(name, template, vars)?;
    serde_json::from_value(json).map_err(|e| RenderError::Shape {
        name: name.to_string(),
        what: "an EMR StepConfig",
        message: e.to_string(),
    })
}

/// Renders a template file (any path, for `submit`) into an EMR `StepConfig`.
pub fn render_step_file(path: &std::path::Path, vars: &Value) -> Result<StepConfig, RenderError> {
    let template = std::fs::read_to_string(path)
        .map_err(|source| RenderError::Read { path: path.display().to_string(), source })?;
    render_step(&path.display().to_string(), &template, vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STEP: &str = r#"{"Name": "{{name}}", "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "{{arg}}"]}}"#;

    #[test]
    fn values_come_out_exactly_and_json_safe() {
        let arg = r#"a==b & c<d "quoted" \path"#;
        let step = render_step("t", STEP, &json!({"name": "n", "arg": arg})).unwrap();
        assert_eq!(step.hadoop_jar_step.args, vec!["spark-submit".to_string(), arg.to_string()]);
    }

    #[test]
    fn a_missing_variable_is_an_error_naming_it() {
        let err = render_step("classify", STEP, &json!({"name": "n"})).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("classify") && message.contains("arg"), "{message}");
    }
}
