//! Reads a preview out of a page's `<head>`: OpenGraph (`og:*`) first, then Twitter card
//! (`twitter:*`), then plain `<title>` and `<meta name="description">`. Text is trimmed,
//! whitespace-collapsed and length-capped; the image URL is resolved against the page URL and
//! must be http(s).

use html5gum::{Token, Tokenizer};
use url::Url;

/// Longest title kept, in characters.
const MAX_TITLE: usize = 300;
/// Longest description kept, in characters.
const MAX_DESCRIPTION: usize = 1000;
/// Longest site name kept, in characters.
const MAX_SITE_NAME: usize = 100;
/// Longest image URL kept, in bytes.
const MAX_IMAGE_URL: usize = 2048;

/// What a page says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageMeta {
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Site name.
    pub site_name: Option<String>,
    /// Absolute image URL.
    pub image_url: Option<String>,
    /// The canonical URL the page declares (`og:url`), if absolute http(s).
    pub canonical_url: Option<String>,
}

#[derive(Default)]
struct Found {
    og: [Option<String>; 5],
    twitter: [Option<String>; 3],
    title: Option<String>,
    description: Option<String>,
}

/// Extracts the preview fields of `html`, fetched from `page`.
pub fn extract(html: &[u8], page: &Url) -> PageMeta {
    let mut found = Found::default();
    let mut in_title = false;
    let mut title_text = String::new();
    // Switch to RCDATA/RAWTEXT for <title>, <script>, <style> like a browser would.
    let mut emitter = html5gum::DefaultEmitter::default();
    emitter.naively_switch_states(true);
    let tokenizer = Tokenizer::new_with_emitter(html, emitter);
    for token in tokenizer.flatten() {
        match token {
            Token::StartTag(tag) => {
                let name = tag.name.as_slice();
                if name == b"meta" {
                    let attr = |key: &str| {
                        tag.attributes.get(key.as_bytes()).map(|v| String::from_utf8_lossy(&v.value).into_owned())
                    };
                    let key = attr("property").or_else(|| attr("name")).map(|k| k.trim().to_ascii_lowercase());
                    if let (Some(key), Some(content)) = (key, attr("content")) {
                        record(&mut found, &key, content);
                    }
                } else if name == b"title" && found.title.is_none() {
                    in_title = true;
                } else if name == b"body" {
                    break;
                }
            }
            Token::String(text) if in_title => title_text.push_str(&String::from_utf8_lossy(&text.value)),
            Token::EndTag(tag) if tag.name.as_slice() == b"title" && in_title => {
                in_title = false;
                found.title = Some(std::mem::take(&mut title_text));
            }
            Token::EndTag(tag) if tag.name.as_slice() == b"head" => break,
            _ => {}
        }
    }
    let [og_title, og_description, og_site, og_image, og_url] = found.og;
    let [tw_title, tw_description, tw_image] = found.twitter;
    PageMeta {
        title: clean(og_title.or(tw_title).or(found.title), MAX_TITLE),
        description: clean(og_description.or(tw_description).or(found.description), MAX_DESCRIPTION),
        site_name: clean(og_site, MAX_SITE_NAME),
        image_url: og_image.or(tw_image).and_then(|raw| absolute(page, &raw)),
        canonical_url: og_url.and_then(|raw| absolute(page, &raw)),
    }
}

fn record(found: &mut Found, key: &str, content: String) {
    let slot = match key {
        "og:title" => &mut found.og[0],
        "og:description" => &mut found.og[1],
        "og:site_name" => &mut found.og[2],
        "og:image" | "og:image:url" | "og:image:secure_url" => &mut found.og[3],
        "og:url" => &mut found.og[4],
        "twitter:title" => &mut found.twitter[0],
        "twitter:description" => &mut found.twitter[1],
        "twitter:image" | "twitter:image:src" => &mut found.twitter[2],
        "description" => &mut found.description,
        _ => return,
    };
    // The first occurrence wins, as with OpenGraph arrays.
    if slot.is_none() {
        *slot = Some(content);
    }
}

/// Trims, collapses whitespace, drops control characters, caps the length; empty → none.
fn clean(text: Option<String>, max_chars: usize) -> Option<String> {
    let text = text?;
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !c.is_control()));
    }
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars - 1).collect::<String>() + "…";
    }
    (!out.is_empty()).then_some(out)
}

fn absolute(page: &Url, raw: &str) -> Option<String> {
    let url = page.join(raw.trim()).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.as_str().len() <= MAX_IMAGE_URL).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://news.example/articles/1").expect("url")
    }

    #[test]
    fn prefers_opengraph_then_twitter_then_title() {
        let html = br#"<!doctype html><html><head>
            <title>Plain &amp; simple</title>
            <meta name="description" content="plain description">
            <meta name="twitter:title" content="Twitter title">
            <meta property="og:title" content="  OG   title &amp; more ">
            <meta property="og:site_name" content="Example News">
            <meta name="twitter:image" content="/img/tw.png">
            <meta property="og:image" content="//cdn.example/og.png">
            </head><body><meta property="og:description" content="not in head"></body></html>"#;
        let meta = extract(html, &page());
        assert_eq!(meta.title.as_deref(), Some("OG title & more"));
        assert_eq!(meta.description.as_deref(), Some("plain description"));
        assert_eq!(meta.site_name.as_deref(), Some("Example News"));
        assert_eq!(meta.image_url.as_deref(), Some("https://cdn.example/og.png"));
    }

    #[test]
    fn falls_back_to_title_and_twitter_image() {
        let html = b"<html><head><title>\n  Just a <b>title</b>\n</title>\
            <meta name=twitter:image content=/t.png></head></html>";
        let meta = extract(html, &page());
        assert_eq!(meta.title.as_deref(), Some("Just a <b>title</b>"), "title is text, not markup");
        assert_eq!(meta.image_url.as_deref(), Some("https://news.example/t.png"));
        assert_eq!(meta.site_name, None);
    }

    #[test]
    fn ignores_unsafe_images_and_caps_lengths() {
        let long = "x".repeat(5000);
        let html = format!(
            r#"<head><meta property="og:image" content="javascript:alert(1)"><meta property="og:title" content="{long}"></head>"#
        );
        let meta = extract(html.as_bytes(), &page());
        assert_eq!(meta.image_url, None);
        assert_eq!(meta.title.as_ref().map(|t| t.chars().count()), Some(MAX_TITLE));
        assert_eq!(extract(b"", &page()), PageMeta::default());
        assert_eq!(extract(b"\xff\xfe<<<>>>", &page()).title, None);
    }
}
