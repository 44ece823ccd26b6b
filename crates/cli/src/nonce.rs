//! `edgeguard nonce`: a page as the edge sends it under `[csp] strict = "nonce"` — every script,
//! style and stylesheet/preload/modulepreload link given `nonce="…"` by the same lol_html
//! rewriter, with the same selectors, that workerd's `HTMLRewriter` runs at the edge.
//!
//! The page streams through in chunks (the output does not depend on them) and goes to stdout
//! as it is rewritten; a one-line summary goes to stderr. With `--nonce` the output is
//! reproducible byte for byte: tests/e2e compare it with what the worker sent.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use edgeguard_core::csp::{NonceRewriter, is_base64_value, nonce_from};

use crate::{CmdResult, Failure, Status, output};

/// Rewrite an HTML page the way the edge does in strict CSP mode.
#[derive(Debug, clap::Args)]
#[command(after_help = "The page goes to stdout; a summary (the nonce and how many elements got it) \
    to stderr. Without --nonce, 128 random bits from the operating system, as the edge draws for \
    every response; the CSP header that goes with the page carries 'nonce-NONCE'.\n\n\
    Exit codes: 0 rewritten, 1 the rewriter refused the page (lol_html's memory limit, or markup \
    whose parsing it cannot be sure of, such as <select><xmp><script>): the output stops there, as \
    the edge cuts off a page it cannot rewrite rather than send scripts without the nonce; 2 usage \
    error (an unreadable file, a nonce that is not base64).\n\n\
    Examples:\n  \
    edgeguard nonce page.html > strict.html\n  \
    curl -s http://localhost:3000/ | edgeguard nonce - --nonce TjBuY2U=")]
pub struct Args {
    /// The HTML page, or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub input: PathBuf,
    /// Use this nonce instead of a random one: CSP's base64-value (A-Z a-z 0-9 + / - _, up to
    /// two `=` at the end).
    #[arg(long, value_name = "NONCE")]
    pub nonce: Option<String>,
}

/// Bytes read from the page at a time.
const CHUNK: usize = 64 * 1024;

fn random_nonce() -> Result<String, Failure> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::failed(format!("the operating system's random generator failed: {e}")))?;
    Ok(nonce_from(bytes))
}

/// Where the rewritten page goes; the first write error is kept and later output dropped.
struct Sink {
    out: BufWriter<io::StdoutLock<'static>>,
    error: Option<io::Error>,
}

impl Sink {
    fn write(&mut self, chunk: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.out.write_all(chunk)
        {
            self.error = Some(e);
        }
    }

    /// Flush; a closed pipe (`edgeguard nonce page.html | head`) is not an error.
    fn finish(mut self) -> Result<(), Failure> {
        let flushed = match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        };
        match flushed {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::usage(format!("cannot write to stdout: {e}"))),
            _ => Ok(()),
        }
    }
}

pub fn run(args: &Args) -> CmdResult {
    let nonce = match &args.nonce {
        Some(n) if is_base64_value(n) => n.clone(),
        Some(n) => {
            return Err(Failure::usage(format!(
                "--nonce `{n}` is not a CSP base64-value (letters, digits, + / - _, then at most two =)"
            )));
        }
        None => random_nonce()?,
    };
    let stdin = args.input.as_os_str() == "-";
    let name = if stdin { "stdin".to_owned() } else { format!("`{}`", args.input.display()) };
    let mut input: Box<dyn Read> = if stdin {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&args.input).map_err(|e| Failure::usage(format!("cannot read {name}: {e}")))?)
    };

    let sink = RefCell::new(Sink { out: BufWriter::with_capacity(CHUNK, io::stdout().lock()), error: None });
    let outcome = stream(&mut input, &nonce, &sink);
    sink.into_inner().finish()?;
    let outcome = outcome.map_err(|e| Failure::usage(format!("cannot read {name}: {e}")))?;
    if let Some(e) = outcome.refused {
        return Err(Failure::failed(format!(
            "the rewriter refused {name} within its first {} bytes: {e}. The output stops there: a page that \
             cannot be rewritten is cut off rather than sent with scripts lacking the nonce",
            outcome.read
        )));
    }
    let marked = outcome.marked;
    output::eprint(&format!("nonce {nonce}: {marked} element{} marked\n", if marked == 1 { "" } else { "s" }));
    Ok(Status::Success)
}

/// How a page went through the rewriter.
struct Outcome {
    /// Elements given the nonce.
    marked: usize,
    /// Bytes read from the input.
    read: u64,
    /// lol_html's refusal, when it stopped.
    refused: Option<String>,
}

/// lol_html's explanation of an ambiguity runs to a paragraph; its first line says what happened.
fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().trim_end_matches('.').to_owned()
}

/// The page through the rewriter into `sink`, a chunk at a time; stops early when stdout is gone.
fn stream(input: &mut dyn Read, nonce: &str, sink: &RefCell<Sink>) -> io::Result<Outcome> {
    let mut rewriter = NonceRewriter::new(nonce, |chunk: &[u8]| sink.borrow_mut().write(chunk));
    let mut buf = vec![0u8; CHUNK];
    let mut read: u64 = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => {
                return Ok(match rewriter.finish() {
                    Ok(marked) => Outcome { marked, read, refused: None },
                    Err(e) => Outcome { marked: 0, read, refused: Some(first_line(&e)) },
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        read = read.saturating_add(n as u64);
        if let Err(e) = rewriter.write(buf.get(..n).unwrap_or_default()) {
            return Ok(Outcome { marked: rewriter.marked(), read, refused: Some(first_line(&e)) });
        }
        if sink.borrow().error.is_some() {
            // stdout is gone: nobody reads the rest.
            return Ok(Outcome { marked: rewriter.marked(), read, refused: None });
        }
    }
}
