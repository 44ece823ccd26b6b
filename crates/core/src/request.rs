//! The request facts a shell hands to the engine: borrowed, so building them costs nothing.

use core::net::IpAddr;

/// What the engine knows about one request. Header names may be in any case.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// Absolute (`https://host/path?q`) or origin-form (`/path?q`) request target, as received.
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// The connection's peer address, used when the trusted client-IP header is absent.
    pub peer_ip: Option<IpAddr>,
}

impl<'a> RequestFacts<'a> {
    /// First value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Value of a cookie from every `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// All `name=value` pairs of every `Cookie` header.
    pub fn cookies(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                let name = name.trim();
                (!name.is_empty()).then(|| (name, value.trim()))
            })
    }

    /// `Content-Length` as a number; `Err` when present but not a valid length.
    pub fn content_length(&self) -> Result<Option<u64>, InvalidContentLength> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => {
                let v = v.trim();
                if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InvalidContentLength);
                }
                v.parse().map(Some).map_err(|_| InvalidContentLength)
            }
        }
    }
}

/// A `Content-Length` header that is not a decimal length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidContentLength;
