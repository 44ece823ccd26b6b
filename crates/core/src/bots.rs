//! Stage 6a: which kind of client sent a request — a browser, or a bot in one of five categories
//! — and what the route does with that category (`bots = { … }`: allow, deny, or a limit of its
//! own).
//!
//! The category comes from the `User-Agent` and the list below ([`KNOWN`], documented with its
//! sources in docs/bots.md). A user agent is a claim anyone can make, so the only signal that
//! *grants* anything is Cloudflare's: `request.cf.verifiedBotCategory` or
//! `request.cf.botManagement.verifiedBot`, which Cloudflare sets after checking the client's
//! network and reverse DNS. Hence:
//!
//! - a client Cloudflare verified gets the category Cloudflare names (or its user agent's, when
//!   Cloudflare's category has no counterpart here), `verified: true`;
//! - a user agent that *claims* a search engine or a monitor without that signal is `unknown`
//!   (`claimed` says what it claimed): a spoofed Googlebot gets what unknown clients get, never
//!   what search engines get;
//! - a claim that can only cost the claimant (an AI crawler, an HTTP library) is taken as made;
//! - a browser-shaped user agent (`Mozilla/5.0 (` and none of the bot markers) is a `browser`,
//!   to which `bots` rules do not apply: telling a headless browser that lies from a person is
//!   fingerprinting, which this module does not do. Limits and the shield still count it.
//!
//! Cost: a browser's user agent is one pass over its bytes looking for four marker words; only
//! other user agents are compared with the list.

use serde::{Deserialize, Serialize};

use crate::request::CfFacts;

/// What kind of client sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A browser-shaped user agent: `bots` rules do not apply.
    Browser,
    SearchEngine,
    Monitor,
    AiCrawler,
    /// HTTP libraries, command-line clients, headless browsers, scrapers.
    Script,
    /// No user agent, one not on the list, or a search engine or monitor Cloudflare did not
    /// verify.
    Unknown,
}

impl Category {
    /// The categories a `bots` rule names, in the order [`BotRules::actions`] stores them.
    pub const BOTS: [Category; 5] = [Category::SearchEngine, Category::Monitor, Category::AiCrawler, Category::Script, Category::Unknown];

    pub fn code(self) -> &'static str {
        match self {
            Category::Browser => "browser",
            Category::SearchEngine => "search_engine",
            Category::Monitor => "monitor",
            Category::AiCrawler => "ai_crawler",
            Category::Script => "script",
            Category::Unknown => "unknown",
        }
    }

    /// A bot category by its policy name (`browser` is not one).
    pub fn from_code(code: &str) -> Option<Category> {
        Category::BOTS.into_iter().find(|c| c.code() == code)
    }

    fn slot(self) -> Option<usize> {
        Category::BOTS.iter().position(|c| *c == self)
    }
}

/// What a route does with one bot category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BotAction {
    Allow,
    /// 403 `bot_denied`.
    Deny,
    /// Counted against this limit (index into `Bundle::limits`) instead of the route's own.
    Limit(u16),
}

/// A route's `bots` table, resolved over `[defaults]`: one action per category of
/// [`Category::BOTS`]. All `Allow` when the policy says nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotRules {
    pub actions: [BotAction; 5],
}

impl Default for BotRules {
    fn default() -> BotRules {
        BotRules { actions: [BotAction::Allow; 5] }
    }
}

impl BotRules {
    /// Nothing to decide: every category allowed (the request's category is not even worked out).
    pub fn is_open(&self) -> bool {
        self.actions.iter().all(|a| *a == BotAction::Allow)
    }

    pub fn action(&self, category: Category) -> BotAction {
        category.slot().and_then(|i| self.actions.get(i)).copied().unwrap_or(BotAction::Allow)
    }

    pub fn set(&mut self, category: Category, action: BotAction) {
        if let Some(slot) = category.slot().and_then(|i| self.actions.get_mut(i)) {
            *slot = action;
        }
    }

    /// Limit indices named by the rules, for the bundle's index check.
    pub fn limits(&self) -> impl Iterator<Item = u16> + '_ {
        self.actions.iter().filter_map(|a| match a {
            BotAction::Limit(i) => Some(*i),
            _ => None,
        })
    }
}

/// Who the request says it is, and how much of that is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bot {
    pub category: Category,
    /// Cloudflare verified the bot (`request.cf`).
    pub verified: bool,
    /// The category the user agent claimed when it was not believed (an unverified search
    /// engine or monitor), else `null`.
    pub claimed: Option<Category>,
    /// The list entry that matched (`Googlebot`, `curl`…), else `null`. Never the raw user agent.
    pub name: Option<&'static str>,
}

/// The user agent's category and Cloudflare's verdict, combined as the module doc says.
pub fn classify(user_agent: Option<&str>, cf: &CfFacts) -> Bot {
    classify_known(user_agent, user_agent.is_some_and(|ua| looks_like_browser(ua.trim().as_bytes())), cf)
}

/// [`classify`] when the caller already knows whether the user agent looks like a browser's.
pub fn classify_known(user_agent: Option<&str>, browser: bool, cf: &CfFacts) -> Bot {
    let (claim, name) = match user_agent.map(str::trim).filter(|ua| !ua.is_empty()) {
        None => (Category::Unknown, None),
        Some(_) if browser => (Category::Browser, None),
        Some(ua) => match lookup(ua.as_bytes()) {
            Some((category, name)) => (category, Some(name)),
            None => (Category::Unknown, None),
        },
    };
    if cf.is_verified_bot() {
        let category = cf.verified_bot_category.and_then(cloudflare_category).unwrap_or(match claim {
            Category::Browser => Category::Unknown,
            other => other,
        });
        return Bot { category, verified: true, claimed: None, name };
    }
    match claim {
        Category::SearchEngine | Category::Monitor => Bot { category: Category::Unknown, verified: false, claimed: Some(claim), name },
        category => Bot { category, verified: false, claimed: None, name },
    }
}

/// Cloudflare's verified bot categories (developers.cloudflare.com/bots/concepts/bot/
/// verified-bots/categories/) that have a counterpart here.
fn cloudflare_category(category: &str) -> Option<Category> {
    let c = category.trim();
    let is = |name: &str| c.eq_ignore_ascii_case(name);
    if is("Search Engine Crawler") || is("Search Engine Optimization") {
        Some(Category::SearchEngine)
    } else if is("Monitoring & Analytics") {
        Some(Category::Monitor)
    } else if is("AI Crawler") || is("AI Assistant") || is("AI Search") {
        Some(Category::AiCrawler)
    } else {
        None
    }
}

/// `Mozilla/5.0 (` followed by none of the words bots put in their user agents (`bot`,
/// `crawl`, `spider`, `http` of a contact URL, `headless`, `compatible;`). One pass, a byte
/// compare per position for most bytes.
pub fn looks_like_browser(ua: &[u8]) -> bool {
    scan_user_agent(ua).browser
}

/// What one pass over a user agent tells both the bot stage and the shield.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UaScan {
    /// [`looks_like_browser`].
    pub browser: bool,
    /// It holds one of the shield's header trigger bytes (`< $ ' " {`), so the shield must
    /// look at it byte by byte.
    pub suspect: bool,
}

/// [`looks_like_browser`] and the shield's trigger bytes in a single pass over the user agent:
/// it is the longest header of nearly every request, so it is read once.
pub fn scan_user_agent(ua: &[u8]) -> UaScan {
    const PREFIX: &[u8] = b"Mozilla/5.0 (";
    let mut browser = ua.get(..PREFIX.len()).is_some_and(|p| p == PREFIX);
    let mut suspect = false;
    for (i, &b) in ua.iter().enumerate() {
        let tail = || ua.get(i..).unwrap_or_default();
        match b {
            b'<' | b'$' | b'\'' | b'"' | b'{' => suspect = true,
            b'b' | b'B' => browser &= !starts_with_ci(tail(), b"bot"),
            b'c' | b'C' => browser &= !(starts_with_ci(tail(), b"crawl") || starts_with_ci(tail(), b"compatible")),
            b's' | b'S' => browser &= !starts_with_ci(tail(), b"spider"),
            b'h' | b'H' => browser &= !(starts_with_ci(tail(), b"http") || starts_with_ci(tail(), b"headless")),
            _ => {}
        }
    }
    UaScan { browser, suspect }
}

/// `hay` starts with `needle` (lower case), ASCII case-insensitively.
pub(crate) fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay.iter().zip(needle).all(|(h, n)| h.to_ascii_lowercase() == *n)
}

/// `needle` (lower case) anywhere in `hay`, ASCII case-insensitively.
pub(crate) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else { return true };
    hay.iter().enumerate().any(|(i, &b)| b.to_ascii_lowercase() == first && starts_with_ci(hay.get(i..).unwrap_or_default(), needle))
}

/// The first list entry whose token the user agent contains.
fn lookup(ua: &[u8]) -> Option<(Category, &'static str)> {
    KNOWN.iter().find(|(token, _, _)| contains_ci(ua, token.as_bytes())).map(|(_, category, name)| (*category, *name))
}

/// The maintained list: a lower-case token found in the user agent, its category and the name
/// reported by `explain` and logs. First match wins, so AI crawlers come before search engines
/// (`OAI-SearchBot`) and specific tokens before generic ones. Sources, per entry, in docs/bots.md:
/// each operator's own crawler documentation, Cloudflare's verified bots directory and the
/// ai-robots-txt project's list of AI agents.
pub const KNOWN: &[(&str, Category, &str)] = &[
    // AI crawlers and assistants
    ("gptbot", Category::AiCrawler, "GPTBot"),
    ("chatgpt-user", Category::AiCrawler, "ChatGPT-User"),
    ("oai-searchbot", Category::AiCrawler, "OAI-SearchBot"),
    ("claudebot", Category::AiCrawler, "ClaudeBot"),
    ("claude-user", Category::AiCrawler, "Claude-User"),
    ("claude-searchbot", Category::AiCrawler, "Claude-SearchBot"),
    ("claude-web", Category::AiCrawler, "Claude-Web"),
    ("anthropic-ai", Category::AiCrawler, "anthropic-ai"),
    ("ccbot", Category::AiCrawler, "CCBot"),
    ("perplexitybot", Category::AiCrawler, "PerplexityBot"),
    ("perplexity-user", Category::AiCrawler, "Perplexity-User"),
    ("bytespider", Category::AiCrawler, "Bytespider"),
    ("amazonbot", Category::AiCrawler, "Amazonbot"),
    ("meta-externalagent", Category::AiCrawler, "meta-externalagent"),
    ("meta-externalfetcher", Category::AiCrawler, "meta-externalfetcher"),
    ("google-extended", Category::AiCrawler, "Google-Extended"),
    ("applebot-extended", Category::AiCrawler, "Applebot-Extended"),
    ("cohere-ai", Category::AiCrawler, "cohere-ai"),
    ("diffbot", Category::AiCrawler, "Diffbot"),
    ("youbot", Category::AiCrawler, "YouBot"),
    ("ai2bot", Category::AiCrawler, "AI2Bot"),
    ("mistralai-user", Category::AiCrawler, "MistralAI-User"),
    ("duckassistbot", Category::AiCrawler, "DuckAssistBot"),
    ("timpibot", Category::AiCrawler, "Timpibot"),
    ("imagesiftbot", Category::AiCrawler, "ImagesiftBot"),
    // Search engines
    ("googlebot", Category::SearchEngine, "Googlebot"),
    ("google-inspectiontool", Category::SearchEngine, "Google-InspectionTool"),
    ("storebot-google", Category::SearchEngine, "Storebot-Google"),
    ("bingbot", Category::SearchEngine, "bingbot"),
    ("bingpreview", Category::SearchEngine, "BingPreview"),
    ("slurp", Category::SearchEngine, "Yahoo! Slurp"),
    ("duckduckbot", Category::SearchEngine, "DuckDuckBot"),
    ("baiduspider", Category::SearchEngine, "Baiduspider"),
    ("yandexbot", Category::SearchEngine, "YandexBot"),
    ("applebot", Category::SearchEngine, "Applebot"),
    ("qwantbot", Category::SearchEngine, "Qwantbot"),
    ("seznambot", Category::SearchEngine, "SeznamBot"),
    ("mojeekbot", Category::SearchEngine, "MojeekBot"),
    ("petalbot", Category::SearchEngine, "PetalBot"),
    ("yeti/", Category::SearchEngine, "Yeti (Naver)"),
    ("sogou", Category::SearchEngine, "Sogou"),
    // Uptime and performance monitors
    ("uptimerobot", Category::Monitor, "UptimeRobot"),
    ("pingdom", Category::Monitor, "Pingdom"),
    ("statuscake", Category::Monitor, "StatusCake"),
    ("betteruptime", Category::Monitor, "Better Stack"),
    ("better stack", Category::Monitor, "Better Stack"),
    ("site24x7", Category::Monitor, "Site24x7"),
    ("newrelicpinger", Category::Monitor, "New Relic Synthetics"),
    ("datadogsynthetics", Category::Monitor, "Datadog Synthetics"),
    ("checkly", Category::Monitor, "Checkly"),
    ("uptime-kuma", Category::Monitor, "Uptime Kuma"),
    ("updown.io", Category::Monitor, "updown.io"),
    ("hetrixtools", Category::Monitor, "HetrixTools"),
    ("freshping", Category::Monitor, "Freshping"),
    ("cron-job.org", Category::Monitor, "cron-job.org"),
    // Scripts: HTTP libraries, command-line clients, headless browsers, scrapers
    ("curl/", Category::Script, "curl"),
    ("wget/", Category::Script, "Wget"),
    ("python-requests", Category::Script, "python-requests"),
    ("python-urllib", Category::Script, "Python urllib"),
    ("python-httpx", Category::Script, "HTTPX"),
    ("aiohttp", Category::Script, "aiohttp"),
    ("scrapy", Category::Script, "Scrapy"),
    ("go-http-client", Category::Script, "Go net/http"),
    ("okhttp", Category::Script, "OkHttp"),
    ("java/", Category::Script, "Java"),
    ("apache-httpclient", Category::Script, "Apache HttpClient"),
    ("node-fetch", Category::Script, "node-fetch"),
    ("undici", Category::Script, "undici"),
    ("axios/", Category::Script, "axios"),
    ("got (", Category::Script, "got"),
    ("libwww-perl", Category::Script, "libwww-perl"),
    ("httpie", Category::Script, "HTTPie"),
    ("postmanruntime", Category::Script, "Postman"),
    ("insomnia", Category::Script, "Insomnia"),
    ("guzzlehttp", Category::Script, "Guzzle"),
    ("faraday", Category::Script, "Faraday"),
    ("ruby", Category::Script, "Ruby"),
    ("reqwest", Category::Script, "reqwest"),
    ("headlesschrome", Category::Script, "HeadlessChrome"),
    ("phantomjs", Category::Script, "PhantomJS"),
    ("playwright", Category::Script, "Playwright"),
    ("puppeteer", Category::Script, "Puppeteer"),
];

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    fn cat(ua: &str) -> Category {
        classify(Some(ua), &CfFacts::NONE).category
    }

    #[test]
    fn browsers_are_browsers() {
        for ua in [
            CHROME,
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        ] {
            assert_eq!(cat(ua), Category::Browser, "{ua}");
        }
    }

    #[test]
    fn an_unverified_search_engine_is_unknown_and_says_what_it_claimed() {
        let b = classify(Some(GOOGLEBOT), &CfFacts::NONE);
        assert_eq!((b.category, b.verified, b.claimed, b.name), (Category::Unknown, false, Some(Category::SearchEngine), Some("Googlebot")));
        let cf = CfFacts { verified_bot_category: Some("Search Engine Crawler"), ..CfFacts::NONE };
        let b = classify(Some(GOOGLEBOT), &cf);
        assert_eq!((b.category, b.verified, b.claimed), (Category::SearchEngine, true, None));
        let cf = CfFacts { verified_bot: true, ..CfFacts::NONE };
        assert_eq!(classify(Some(GOOGLEBOT), &cf).category, Category::SearchEngine);
        // Cloudflare's category wins over the user agent's.
        let cf = CfFacts { verified_bot_category: Some("AI Crawler"), ..CfFacts::NONE };
        assert_eq!(classify(Some(GOOGLEBOT), &cf).category, Category::AiCrawler);
    }

    #[test]
    fn claims_that_only_restrict_are_taken() {
        assert_eq!(cat("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"), Category::AiCrawler);
        assert_eq!(cat("curl/8.5.0"), Category::Script);
        assert_eq!(cat("python-requests/2.32.3"), Category::Script);
        assert_eq!(cat("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"), Category::Script);
        assert_eq!(cat("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"), Category::Unknown);
        assert_eq!(classify(Some("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"), &CfFacts::NONE).claimed, Some(Category::Monitor));
    }

    #[test]
    fn no_user_agent_and_unlisted_ones_are_unknown() {
        assert_eq!(classify(None, &CfFacts::NONE).category, Category::Unknown);
        assert_eq!(cat("  "), Category::Unknown);
        assert_eq!(cat("Stripe/1.0 (+https://stripe.com/docs/webhooks)"), Category::Unknown);
        assert_eq!(cat("edgeguard-test/1"), Category::Unknown);
        assert_eq!(cat("Mozilla/5.0 (compatible; SomeNewBot/0.1)"), Category::Unknown);
    }

    #[test]
    fn rules_default_open() {
        let mut r = BotRules::default();
        assert!(r.is_open());
        r.set(Category::Script, BotAction::Limit(3));
        assert!(!r.is_open());
        assert_eq!(r.action(Category::Script), BotAction::Limit(3));
        assert_eq!(r.action(Category::Browser), BotAction::Allow);
        assert_eq!(r.limits().collect::<Vec<_>>(), vec![3]);
        for c in Category::BOTS {
            assert_eq!(Category::from_code(c.code()), Some(c));
        }
        assert_eq!(Category::from_code("browser"), None);
    }
}
