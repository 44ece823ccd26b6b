//! Content-Security-Policy serialization, shared by the compiler and the engine.

/// `name value value;name2 …` in the given order, as helmet writes it (no space after `;`).
pub fn render<S: AsRef<str>>(directives: &[(S, Vec<S>)]) -> String {
    let mut out = String::new();
    for (name, values) in directives {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(name.as_ref());
        for v in values {
            out.push(' ');
            out.push_str(v.as_ref());
        }
    }
    out
}
