//! The response the client receives: the engine's response phase (edgeguard_core::response)
//! executed on an origin response as the worker's shell executes it, each header marked with
//! what the edge did to it.

use edgeguard_core::response::{self, Op};
use edgeguard_core::{Action, Decision, Engine};
use serde::{Deserialize, Serialize};

/// The origin's answer the page assumes (for `forward`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

fn ok() -> u16 {
    200
}

impl Origin {
    pub fn parse(json: &str) -> Result<Origin, String> {
        if json.trim().is_empty() {
            return Ok(Origin {
                status: 200,
                headers: Vec::new(),
            });
        }
        serde_json::from_str(json).map_err(|e| format!("the origin response is not valid: {e}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The edge added it (the origin sent none, or the edge answered itself).
    Set,
    /// The edge replaced the origin's value.
    Replaced,
    /// A default: added because the origin sent none.
    Default,
    /// The origin's header, passed through.
    Kept,
    /// Added next to the origin's (Set-Cookie).
    Appended,
    /// The origin's header, removed by the edge.
    Removed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub name: String,
    /// The value the client receives (`null` for a removed header).
    pub value: Option<String>,
    pub change: Change,
    /// What the origin sent, when it sent this header.
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// The status the client receives.
    pub status: u16,
    /// Whether the origin answered (`forward`) or the edge did.
    pub from_origin: bool,
    /// In the order the client receives them, then the removed ones.
    pub headers: Vec<Header>,
}

/// `head`: the request's method is `HEAD` (strict CSP sends its header without a body then).
/// The response phase is the engine's (edgeguard_core::response), executed here on a header
/// list that remembers what the edge did to each header; the strict CSP's nonce is shown as
/// its `{nonce}` placeholder.
pub fn apply(engine: &Engine, d: &Decision, origin: &Origin, head: bool) -> Response {
    let forward = d.action == Action::Forward;
    let status = if forward {
        origin.status
    } else {
        d.status.unwrap_or(200)
    };
    let mut headers: Vec<Header> = if forward {
        origin
            .headers
            .iter()
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .filter(|(n, _)| !n.is_empty())
            .map(|(name, value)| Header {
                name,
                value: Some(value.clone()),
                change: Change::Kept,
                origin: Some(value),
            })
            .collect()
    } else {
        Vec::new()
    };
    let bundle = engine.bundle();
    // The header set first: the response's type, which the strict CSP choice reads, is read as
    // the set left it (as the worker's shell does).
    for op in &response::static_ops(bundle, d.headers) {
        execute(&mut headers, op);
    }
    let value_of = |headers: &[Header], name: &str| {
        headers
            .iter()
            .find(|h| h.name == name && h.change != Change::Removed)
            .and_then(|h| h.value.clone())
            .unwrap_or_default()
    };
    let (content_type, content_encoding) = (
        value_of(&headers, "content-type"),
        value_of(&headers, "content-encoding"),
    );
    let sent = response::Sent {
        status,
        from_origin: forward,
        content_type: &content_type,
        content_encoding: &content_encoding,
        head,
    };
    for op in &response::ops(bundle, d, &sent) {
        execute(&mut headers, op);
    }
    // Removed ones last, so the list reads as the response.
    headers.sort_by_key(|h| h.change == Change::Removed);
    Response {
        status,
        from_origin: forward,
        headers,
    }
}

/// One operation on the marked list, as the worker's shell performs it on a `Headers`.
fn execute(headers: &mut Vec<Header>, op: &Op) {
    let live = |h: &Header, name: &str| h.name == name && h.change != Change::Removed;
    match op {
        // The origin's copies show as removed; one the edge had added is simply gone.
        Op::Remove(name) => {
            headers.retain(|h| !(live(h, name) && h.origin.is_none()));
            for h in headers.iter_mut().filter(|h| live(h, name)) {
                h.change = Change::Removed;
                h.value = None;
            }
        }
        Op::Default(name, value) => {
            if !headers.iter().any(|h| live(h, name)) {
                headers.push(Header {
                    name: name.to_string(),
                    value: Some(value.to_string()),
                    change: Change::Default,
                    origin: None,
                });
            }
        }
        Op::Set(name, value) | Op::SetNonced(name, value) => set(headers, name, value),
        Op::Append(name, value) => headers.push(Header {
            name: name.to_string(),
            value: Some(value.to_string()),
            change: Change::Appended,
            origin: None,
        }),
        Op::RewriteBody => {
            for h in headers.iter_mut().filter(|h| live(h, "content-length")) {
                h.change = Change::Removed;
                h.value = None;
            }
            if let Some(etag) = headers
                .iter_mut()
                .find(|h| live(h, "etag"))
                .filter(|h| h.value.as_deref().is_some_and(|v| !v.starts_with("W/")))
            {
                etag.value = etag.value.as_ref().map(|v| format!("W/{v}"));
                etag.change = Change::Replaced;
            }
        }
    }
}

/// Replace every value of `name` with `value` (a second copy from the origin goes, as
/// `Headers.set` leaves one).
fn set(headers: &mut Vec<Header>, name: &str, value: &str) {
    let mut replaced = false;
    for h in headers
        .iter_mut()
        .filter(|h| h.name == name && h.change != Change::Removed)
    {
        if replaced {
            h.change = Change::Removed;
            h.value = None;
            continue;
        }
        replaced = true;
        h.change = if h.origin.is_some() {
            Change::Replaced
        } else {
            Change::Set
        };
        h.value = Some(value.to_owned());
    }
    if !replaced {
        headers.push(Header {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            change: Change::Set,
            origin: None,
        });
    }
}
