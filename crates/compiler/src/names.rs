//! Named definitions (`[limits.*]`, `[api_keys.*]`, `[origins.*]`) and the references to them.
//!
//! A reference to a name that is defined but has an error of its own resolves to nothing
//! without a second diagnostic: the definition's error is the one to fix.

use std::collections::BTreeMap;

use core::ops::Range;

use crate::Ctx;
use crate::diagnostics::{Diagnostic, suggest};

pub struct Names {
    /// The table the names are defined in: `limits`, `api_keys` or `origins`.
    section: &'static str,
    /// What one entry is called in messages: "limit", "api key", "origin".
    what: &'static str,
    code: &'static str,
    /// The end of the help line when there is nothing to suggest: "define it as [section.name]…".
    define_hint: &'static str,
    /// Every defined name, with its index in the compiled table, or `None` when its definition
    /// was reported as invalid.
    defined: BTreeMap<String, Option<u16>>,
}

impl Names {
    pub fn new(section: &'static str, what: &'static str, code: &'static str, define_hint: &'static str) -> Names {
        Names { section, what, code, define_hint, defined: BTreeMap::new() }
    }

    pub fn define(&mut self, name: &str, index: Option<u16>) {
        self.defined.insert(name.to_owned(), index);
    }

    /// How many names are defined, valid or not.
    pub fn len(&self) -> usize {
        self.defined.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defined.is_empty()
    }

    /// The index of a defined, valid name; nothing reported.
    pub fn lookup_quiet(&self, name: &str) -> Option<u16> {
        self.defined.get(name).copied().flatten()
    }

    /// The index a reference at `span` resolves to. An undefined name is an error with "did you
    /// mean", unless the table it would be defined in could not be read.
    pub fn lookup(&self, ctx: &mut Ctx, name: &str, span: Range<usize>) -> Option<u16> {
        if let Some(index) = self.defined.get(name) {
            return *index;
        }
        if ctx.unread(&format!("{}.{name}", self.section)) {
            return None;
        }
        let d = Diagnostic::error(self.code, span, format!("{} `{name}` is not defined", self.what));
        ctx.push(match suggest(name, self.defined.keys().map(String::as_str)) {
            Some(best) => d.help(format!("did you mean `{best}`?")),
            None => d.help(format!("define it as [{}.{name}]{}", self.section, self.define_hint)),
        });
        None
    }
}
