//! Writing to stdout, stderr and files without panicking (a closed pipe is not an error).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::Failure;

/// Print to stdout. A closed pipe (`edgeguard schema | head`) ends output quietly.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::usage(format!("cannot write to stdout: {e}"))),
    }
}

/// `text` without the ` (os error N)` an `io::Error` appends: the number is the platform's (2
/// natively, 44 under WASI for the same missing file), the words before it say it all.
pub fn without_os_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (os error ") {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        let tail = after.trim_start_matches(" (os error ");
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        match tail.get(digits..).and_then(|t| t.strip_prefix(')')) {
            Some(next) if digits > 0 => rest = next,
            _ => {
                out.push_str(" (os error ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Print to stderr; failures to do so are ignored (there is nowhere left to report them).
pub fn eprint(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Replace `path` with `bytes` atomically: write a sibling temporary file, then rename it, so a
/// reader never sees half a bundle and a failed write leaves the old file in place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.is_empty() {
        return Err(Failure::usage(format!("`{}` is not a file name", path.display())));
    }
    // A random suffix, not the process id: WASI (the npm package's CLI) has no process ids, and
    // two writers of one file never share a temporary one either way.
    let unique = getrandom::u64().map_err(|e| Failure::usage(format!("cannot write `{}`: no random name for a temporary file: {e}", path.display())))?;
    let tmp = path.with_file_name(format!(".{name}.{unique:016x}.tmp"));
    let written = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Failure::usage(format!("cannot write `{}`: {e}", path.display())));
    }
    Ok(())
}

/// Write a new file; an existing one is only replaced when `force` is set.
pub fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<(), Failure> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Failure::usage(format!("`{}` already exists; pass --force to overwrite it", path.display()))
        } else {
            Failure::usage(format!("cannot write `{}`: {e}", path.display()))
        }
    })?;
    file.write_all(bytes).map_err(|e| Failure::usage(format!("cannot write `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::without_os_codes;

    #[test]
    fn os_codes_are_dropped() {
        assert_eq!(without_os_codes("cannot read `a`: No such file or directory (os error 2)"), "cannot read `a`: No such file or directory");
        assert_eq!(without_os_codes("x (os error 44) and y (os error 13)!"), "x and y!");
        assert_eq!(without_os_codes("keep (os error x) and (os error )"), "keep (os error x) and (os error )");
        assert_eq!(without_os_codes(""), "");
    }
}
