//! Text helpers of the window, free of egui: links inside messages, search matches, times
//! and durations.

use chrono::{DateTime, Local, NaiveDate, TimeZone};

/// A piece of a message: plain text or a link to open in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Plain text.
    Text(&'a str),
    /// An `http(s)://` or `www.` address.
    Link(&'a str),
}

/// Full-width punctuation ends a link: Chinese text puts no space after one.
const CJK_PUNCTUATION: &str = "。，、；：！？（）《》「」【】";

/// Splits a message into text and links. A link runs to the next whitespace; closing
/// punctuation at its end ("see https://x.org/a." or "(https://x.org)") stays text.
pub fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((start, prefix_len)) = find_link_start(rest) {
        let tail = &rest[start..];
        let end = tail.find(|c: char| c.is_whitespace() || CJK_PUNCTUATION.contains(c)).unwrap_or(tail.len());
        let link = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '"', '\'']);
        if link.len() <= prefix_len {
            // Only a prefix: not a link; keep it as text and look further.
            out.push(Segment::Text(&rest[..start + end]));
            rest = &rest[start + end..];
            continue;
        }
        if start > 0 {
            out.push(Segment::Text(&rest[..start]));
        }
        out.push(Segment::Link(link));
        rest = &rest[start + link.len()..];
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest));
    }
    out
}

/// Where the first link starts, and the length of its prefix.
fn find_link_start(text: &str) -> Option<(usize, usize)> {
    ["https://", "http://", "www."]
        .iter()
        .filter_map(|prefix| {
            text.match_indices(prefix)
                // "www." only at a word start, so "awww.txt" stays text.
                .find(|(at, _)| {
                    *prefix != "www." || text[..*at].chars().last().is_none_or(|c| !c.is_alphanumeric())
                })
                .map(|(at, _)| (at, prefix.len()))
        })
        .min()
}

/// The address a link segment opens: `www.` links get `https://`.
pub fn link_target(link: &str) -> String {
    if link.starts_with("www.") { format!("https://{link}") } else { link.to_owned() }
}

/// Where `query` first occurs in `text`, ignoring case (as the search index does), as a byte
/// range of `text`.
pub fn find_match(text: &str, query: &str) -> Option<std::ops::Range<usize>> {
    let wanted: Vec<char> = query.chars().flat_map(char::to_lowercase).collect();
    if wanted.is_empty() {
        return None;
    }
    text.char_indices().find_map(|(start, _)| {
        let mut folded =
            text[start..].char_indices().flat_map(|(at, c)| c.to_lowercase().map(move |l| (at, l)));
        let mut end = start;
        for want in &wanted {
            let (at, got) = folded.next()?;
            if got != *want {
                return None;
            }
            end = start + at;
        }
        let last_len = text[end..].chars().next().map_or(0, char::len_utf8);
        Some(start..end + last_len)
    })
}

/// About `context` characters of `text` on each side of `found`, with "…" where cut, as the
/// snippet and the match's range inside it.
pub fn snippet(
    text: &str,
    found: std::ops::Range<usize>,
    context: usize,
) -> (String, std::ops::Range<usize>) {
    let flat = |s: &str| s.replace(['\n', '\r', '\t'], " ");
    let before_start =
        text[..found.start].char_indices().rev().nth(context.saturating_sub(1)).map(|(at, _)| at);
    let after_end = text[found.end..].char_indices().nth(context).map(|(at, _)| found.end + at);
    let mut out = String::new();
    if let Some(at) = before_start.filter(|&at| at > 0) {
        out.push('…');
        out.push_str(&flat(&text[at..found.start]));
    } else {
        out.push_str(&flat(&text[..found.start]));
    }
    let start = out.len();
    out.push_str(&flat(&text[found.clone()]));
    let end = out.len();
    match after_end {
        Some(at) => {
            out.push_str(&flat(&text[found.end..at]));
            out.push('…');
        }
        None => out.push_str(&flat(&text[found.end..])),
    }
    (out, start..end)
}

/// Local date and time of a message timestamp (milliseconds since the Unix epoch).
pub fn local_time(ms: u64) -> DateTime<Local> {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    Local.timestamp_millis_opt(ms).single().unwrap_or_else(Local::now)
}

/// The local calendar day of a message timestamp.
pub fn local_day(ms: u64) -> NaiveDate {
    local_time(ms).date_naive()
}

/// "1:05" or "2:03:04": a duration for "time left".
pub fn clock_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::{Link, Text};

    #[test]
    fn matches_ignore_case_and_snippets_keep_the_match() {
        assert_eq!(find_match("Lunch at NOON", "noon"), Some(9..13));
        assert_eq!(find_match("明天下午三点开会", "三点"), Some(12..18));
        assert_eq!(find_match("ÄRGER", "ärg"), Some(0..4));
        assert_eq!(find_match("abc", "abcd"), None);
        assert_eq!(find_match("abc", ""), None);
        let text = "one two three four five six seven eight nine";
        let found = find_match(text, "five").unwrap();
        let (cut, at) = snippet(text, found, 6);
        assert_eq!(cut, "… four five six s…");
        assert_eq!(&cut[at], "five");
        let (whole, at) = snippet("a\nb 午饭 c", find_match("a\nb 午饭 c", "午饭").unwrap(), 10);
        assert_eq!((whole.as_str(), &whole[at.clone()]), ("a b 午饭 c", "午饭"));
    }

    #[test]
    fn links_are_found_without_trailing_punctuation() {
        assert_eq!(segments("no links here"), [Text("no links here")]);
        assert_eq!(
            segments("see https://example.org/a?b=1. then (www.x.cn)"),
            [Text("see "), Link("https://example.org/a?b=1"), Text(". then ("), Link("www.x.cn"), Text(")")]
        );
        assert_eq!(
            segments("http://a.b\nhttps://c.d"),
            [Link("http://a.b"), Text("\n"), Link("https://c.d")]
        );
        assert_eq!(
            segments("看这个https://例子.cn。好"),
            [Text("看这个"), Link("https://例子.cn"), Text("。好")]
        );
        assert_eq!(segments("awww.txt https:// x"), [Text("awww.txt https://"), Text(" x")]);
        assert_eq!(link_target("www.x.cn"), "https://www.x.cn");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(clock_duration(65), "1:05");
        assert_eq!(clock_duration(7384), "2:03:04");
        assert_eq!(clock_duration(0), "0:00");
    }
}
