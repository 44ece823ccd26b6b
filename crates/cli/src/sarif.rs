//! SARIF 2.1.0 output, shared by `check`, `test` and `diff`, so findings show up in
//! code-scanning UIs (GitHub code scanning and others).

use serde_json::{Value, json};

/// SARIF result level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Note,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// One finding at a location in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable rule id, e.g. `E050`, `W010`, `test-failed`, `diff-weakened`.
    pub rule_id: String,
    /// One-line description of the rule (shown as the rule's short description).
    pub rule_name: String,
    pub level: Level,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub help: Option<String>,
}

/// A complete SARIF log with one run of the `edgeguard` tool.
pub fn render(findings: &[Finding]) -> String {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<&str> = Vec::new();
    for f in findings {
        if !rule_ids.contains(&f.rule_id.as_str()) {
            rule_ids.push(&f.rule_id);
            let mut rule = json!({
                "id": f.rule_id,
                "shortDescription": { "text": f.rule_name },
                "helpUri": "https://github.com/edgeguard/edgeguard/blob/main/docs/diagnostics.md",
            });
            if let (Some(help), Some(object)) = (&f.help, rule.as_object_mut()) {
                object.insert("help".into(), json!({ "text": help }));
            }
            rules.push(rule);
        }
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let rule_index = rule_ids.iter().position(|r| *r == f.rule_id).unwrap_or(0);
            let mut message = f.message.clone();
            if let Some(help) = &f.help {
                message.push_str(&format!(" (help: {help})"));
            }
            json!({
                "ruleId": f.rule_id,
                "ruleIndex": rule_index,
                "level": f.level.as_str(),
                "message": { "text": message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.file },
                        "region": {
                            "startLine": f.line.max(1),
                            "startColumn": f.column.max(1),
                            "endLine": f.end_line.max(f.line).max(1),
                            "endColumn": f.end_column.max(1),
                        }
                    }
                }]
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "edgeguard",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/edgeguard/edgeguard",
                    "rules": rules,
                }
            },
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}
