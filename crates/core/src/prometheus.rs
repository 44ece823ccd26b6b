//! Prometheus text exposition format 0.0.4: what the isolate's metrics endpoint and the fleet
//! statistics' `?scope=fleet` both write.

use std::fmt::Write as _;

/// One Prometheus label value, escaped (`\`, `"` and newlines).
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A Prometheus text being written: `# HELP`/`# TYPE` heads and samples.
pub(crate) struct Prom {
    pub(crate) out: String,
}

impl Prom {
    pub(crate) fn with_capacity(bytes: usize) -> Prom {
        Prom { out: String::with_capacity(bytes) }
    }

    pub(crate) fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl core::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

