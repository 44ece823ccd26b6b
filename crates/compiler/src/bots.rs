//! A route's `bots` table: one action per bot category ("allow", "deny", or a limit's name),
//! merged over `[defaults]` category by category.

use edgeguard_core::bots::{BotAction, BotRules, Category};

use crate::diagnostics::{Diagnostic, suggest};
use crate::model::{Map, S};
use crate::{Ctx, codes};

/// `bots` written at `at`, over `base` (the defaults' rules, or none).
pub fn resolve(ctx: &mut Ctx, table: &Map<S<String>>, base: &BotRules, limits: &mut crate::limits::Limits, at: &str) -> BotRules {
    let mut rules = base.clone();
    for (name, value) in table {
        let Some(category) = Category::from_code(name.get_ref().trim()) else {
            let names = Category::BOTS.map(Category::code);
            let mut d = Diagnostic::error(codes::BOT_CATEGORY, name.span(), format!("`{}` is not a bot category (in {at})", name.get_ref()));
            d = match (name.get_ref().as_str(), suggest(name.get_ref(), names)) {
                ("browser" | "human", _) => d.help("browsers are not bots: `bots` rules never apply to them; categories: search_engine, monitor, ai_crawler, script, unknown"),
                (_, Some(best)) => d.help(format!("did you mean `{best}`? categories: search_engine, monitor, ai_crawler, script, unknown")),
                (_, None) => d.help("categories: search_engine, monitor, ai_crawler, script, unknown"),
            };
            ctx.push(d);
            continue;
        };
        let action = match value.get_ref().trim() {
            "allow" => Some(BotAction::Allow),
            "deny" => Some(BotAction::Deny),
            "none" => {
                ctx.push(
                    Diagnostic::error(codes::BOT_CATEGORY, value.span(), "`none` is not a bot action")
                        .help("write \"allow\" (no limit beyond the route's), \"deny\" (403) or the name of a [limits.<name>]"),
                );
                None
            }
            limit => limits.names.lookup(ctx, limit, value.span()).map(BotAction::Limit),
        };
        if let Some(action) = action {
            rules.set(category, action);
        }
    }
    rules
}
