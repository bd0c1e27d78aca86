//! Targets files (`--targets FILE`): many requests to one server, read
//! once before the run. Three formats, told apart by their first line:
//!
//! - one URL or path per line;
//! - blocks of `METHOD URL`, header lines, a blank line and an inline body
//!   (`@path` for a body read from a file), separated by a line `###`,
//!   each optionally preceded by `# weight=N`;
//! - JSON lines: `{"method": .., "url": .., "header": {..}, "body": ..}`.
//!
//! Every target must go to the same scheme and host:port (the connections
//! go to one server); paths are resolved against the base URL. Errors name
//! the line, so that a user can fix the file.
//!
//! ```
//! let base = proto::Target::parse("http://127.0.0.1:8080/").unwrap();
//! let file = "POST /login\nContent-Type: text/plain\n\nuser=a\n###\n# weight=3\nGET /home\n";
//! let t = proto::targets::parse(file, Some(&base)).unwrap();
//! assert_eq!(t.len(), 2);
//! assert_eq!((t[0].spec.method.as_str(), t[0].spec.body.as_slice()), ("POST", &b"user=a"[..]));
//! assert_eq!((t[1].spec.target.path_and_query.as_str(), t[1].weight), ("/home", 3));
//! ```

use std::fmt;
use std::path::PathBuf;

use crate::{RequestError, RequestSpec, Target};

/// One request of a targets file, ready to encode.
#[derive(Debug, Clone)]
pub struct TargetEntry {
    /// The request (its body read from the file when it named one).
    pub spec: RequestSpec,
    /// Its share of a weighted mix (1 unless the file says otherwise).
    pub weight: u32,
    /// The file's line it starts on (1-based), for messages.
    pub line: usize,
}

/// Why a targets file cannot be used, with the line to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetsError {
    /// 1-based line number, 0 for the file as a whole.
    pub line: usize,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for TargetsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => f.write_str(&self.reason),
            n => write!(f, "line {n}: {}", self.reason),
        }
    }
}

impl std::error::Error for TargetsError {}

fn err(line: usize, reason: impl Into<String>) -> TargetsError {
    TargetsError {
        line,
        reason: reason.into(),
    }
}

/// A request before its URL is resolved.
struct Raw {
    line: usize,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    body_file: Option<PathBuf>,
    weight: u32,
}

impl Raw {
    fn get(line: usize, url: &str) -> Raw {
        Raw {
            line,
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            body_file: None,
            weight: 1,
        }
    }
}

/// Parses a targets file. `base` is the URL given on the command line, if
/// any: paths resolve against it and full URLs must match its server.
pub fn parse(text: &str, base: Option<&Target>) -> Result<Vec<TargetEntry>, TargetsError> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !is_comment(l));
    let raws = match first {
        None => return Err(err(0, "the targets file has no targets")),
        Some(l) if l.starts_with('{') => json_lines(text)?,
        Some(l) if is_request_line(l) || text.lines().any(|l| l.trim() == "###") => blocks(text)?,
        Some(_) => url_lines(text),
    };
    resolve(raws, base)
}

/// A `#` line that is not a block separator (`###`).
fn is_comment(l: &str) -> bool {
    l.starts_with('#') && !l.starts_with("###")
}

/// `METHOD URL`, where METHOD is an upper-case token.
fn is_request_line(l: &str) -> bool {
    match l.split_once(' ') {
        Some((m, rest)) => {
            !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) && !rest.trim().is_empty()
        }
        None => false,
    }
}

fn url_lines(text: &str) -> Vec<Raw> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| Raw::get(n, l))
        .collect()
}

fn blocks(text: &str) -> Result<Vec<Raw>, TargetsError> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        // Before a block: blank lines, separators, comments and its weight.
        let mut weight = 1;
        while i < lines.len() {
            let l = lines[i].trim();
            if let Some(w) = l.strip_prefix("# weight=") {
                weight = w.trim().parse().ok().filter(|&w| w > 0).ok_or_else(|| {
                    err(
                        i + 1,
                        format!("invalid weight '{w}': expected a whole number above 0"),
                    )
                })?;
            } else if !(l.is_empty() || l == "###" || l.starts_with('#')) {
                break;
            }
            i += 1;
        }
        if i == lines.len() {
            break;
        }
        let start = i + 1;
        let l = lines[i].trim();
        let (method, url) = l
            .split_once(' ')
            .filter(|_| is_request_line(l))
            .ok_or_else(|| err(start, format!("expected 'METHOD URL', found '{l}'")))?;
        let mut raw = Raw::get(start, url.trim());
        raw.method = method.to_string();
        raw.weight = weight;
        i += 1;
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "###" {
            let h = RequestSpec::parse_header(lines[i]).map_err(|_| {
                err(
                    i + 1,
                    format!(
                        "expected a header 'Name: value', found '{}'",
                        lines[i].trim()
                    ),
                )
            })?;
            raw.headers.push(h);
            i += 1;
        }
        if i < lines.len() && lines[i].trim().is_empty() {
            // The body: every line up to the separator, or a file.
            i += 1;
            let from = i;
            while i < lines.len() && lines[i].trim() != "###" {
                i += 1;
            }
            let body = lines[from..i].join("\n");
            let body = body.trim_end_matches('\n');
            match body.strip_prefix('@') {
                Some(path) if !path.contains('\n') => raw.body_file = Some(path.trim().into()),
                _ => raw.body = body.as_bytes().to_vec(),
            }
        }
        out.push(raw);
    }
    Ok(out)
}

fn json_lines(text: &str) -> Result<Vec<Raw>, TargetsError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let (n, l) = (i + 1, l.trim());
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| err(n, format!("not a JSON object: {e}")))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str());
        let url = field("url").ok_or_else(|| err(n, "no \"url\" string"))?;
        let mut raw = Raw::get(n, url);
        if let Some(m) = field("method") {
            raw.method = m.to_string();
        }
        match v.get("header").or_else(|| v.get("headers")) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(map)) => {
                for (k, val) in map {
                    let vals: Vec<&str> = match val {
                        serde_json::Value::String(s) => vec![s.as_str()],
                        serde_json::Value::Array(a) => {
                            a.iter().filter_map(|x| x.as_str()).collect()
                        }
                        _ => return Err(err(n, format!("header '{k}' is not a string"))),
                    };
                    for s in vals {
                        let h = RequestSpec::parse_header(&format!("{k}: {s}"))
                            .map_err(|_| err(n, format!("invalid header '{k}: {s}'")))?;
                        raw.headers.push(h);
                    }
                }
            }
            Some(_) => return Err(err(n, "\"header\" must be an object of names to values")),
        }
        if let Some(b) = field("body") {
            raw.body = b.as_bytes().to_vec();
        }
        out.push(raw);
    }
    Ok(out)
}

/// Resolves every URL against the base, checks they share one server, and
/// reads body files.
fn resolve(raws: Vec<Raw>, base: Option<&Target>) -> Result<Vec<TargetEntry>, TargetsError> {
    let base_url = match base {
        Some(b) => {
            Some(url::Url::parse(&b.url).map_err(|e| err(0, format!("invalid base URL: {e}")))?)
        }
        None => None,
    };
    let mut base_url = base_url;
    let mut server: Option<(bool, String, u16)> = base.map(|b| (b.tls, b.host.clone(), b.port));
    let mut out = Vec::with_capacity(raws.len());
    for r in raws {
        let absolute = match &base_url {
            Some(b) => b
                .join(&r.url)
                .map_err(|e| err(r.line, format!("invalid URL '{}': {e}", r.url)))?,
            None => url::Url::parse(&r.url).map_err(|_| {
                err(
                    r.line,
                    format!("'{}' is a path, but no base URL was given", r.url),
                )
            })?,
        };
        // Without a base URL the file's first full URL is the base for the
        // paths after it.
        base_url.get_or_insert_with(|| absolute.clone());
        let target = Target::parse(absolute.as_str()).map_err(|e| err(r.line, e.to_string()))?;
        let here = (target.tls, target.host.clone(), target.port);
        match &server {
            Some(s) if *s != here => {
                return Err(err(
                    r.line,
                    format!(
                        "'{}' goes to another server than {}; all targets must share one scheme and host:port",
                        r.url,
                        base.map_or_else(|| "the first target".to_string(), |b| b.url.clone())
                    ),
                ))
            }
            Some(_) => {}
            None => server = Some(here),
        }
        let body = match &r.body_file {
            Some(path) => std::fs::read(path).map_err(|e| {
                err(
                    r.line,
                    format!("cannot read body file '{}': {e}", path.display()),
                )
            })?,
            None => r.body,
        };
        let spec = RequestSpec {
            target,
            method: r.method,
            headers: r.headers,
            body,
        };
        spec.encode()
            .map_err(|e: RequestError| err(r.line, e.to_string()))?;
        out.push(TargetEntry {
            spec,
            weight: r.weight,
            line: r.line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Target {
        Target::parse("http://127.0.0.1:8080/api/").unwrap()
    }

    #[test]
    fn url_lines_resolve_against_the_base() {
        let t = parse(
            "/a\n# a comment\n\nb?x=1\nhttp://127.0.0.1:8080/c\n",
            Some(&base()),
        )
        .unwrap();
        let paths: Vec<&str> = t
            .iter()
            .map(|e| e.spec.target.path_and_query.as_str())
            .collect();
        assert_eq!(paths, ["/a", "/api/b?x=1", "/c"]);
        assert_eq!(t[1].line, 4);
        assert!(t.iter().all(|e| e.spec.method == "GET" && e.weight == 1));
    }

    #[test]
    fn full_urls_need_no_base_but_share_one_server() {
        let t = parse("http://h:1/a\nhttp://h:1/b\n", None).unwrap();
        assert_eq!(t.len(), 2);
        let e = parse("http://h:1/a\nhttp://other:1/b\n", None).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("another server"), "{e}");
        let e = parse("https://127.0.0.1:8080/a\n", Some(&base())).unwrap_err();
        assert!(e.to_string().contains("another server"), "{e}");
        let e = parse("/a\n", None).unwrap_err();
        assert!(e.to_string().contains("no base URL"), "{e}");
    }

    #[test]
    fn blocks_carry_methods_headers_bodies_and_weights() {
        let dir = std::env::temp_dir().join(format!("urk-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let body_file = dir.join("body.json");
        std::fs::write(&body_file, b"{\"a\":1}").unwrap();
        let file = format!(
            "# weight=2\nPOST /login\nContent-Type: text/plain\nX-A: b\n\nuser=a\nline two\n###\nPUT /doc\n\n@{}\n###\n# weight=5\nDELETE /x\n",
            body_file.display()
        );
        let t = parse(&file, Some(&base())).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].spec.method.as_str(), t[0].weight), ("POST", 2));
        assert_eq!(t[0].spec.headers.len(), 2);
        assert_eq!(t[0].spec.body, b"user=a\nline two");
        assert_eq!(
            (t[1].spec.method.as_str(), t[1].spec.body.as_slice()),
            ("PUT", &b"{\"a\":1}"[..])
        );
        assert_eq!(
            (t[2].spec.method.as_str(), t[2].weight, t[2].line),
            ("DELETE", 5, 14)
        );
        let encoded = t[0].spec.encode().unwrap();
        assert!(encoded.ends_with(b"Content-Length: 15\r\n\r\nuser=a\nline two"));
    }

    #[test]
    fn json_lines_are_read() {
        let file = r#"{"method": "POST", "url": "/a", "header": {"X-K": ["1", "2"], "Accept": "*/*"}, "body": "hi"}
{"url": "/b"}
"#;
        let t = parse(file, Some(&base())).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].spec.headers.len(), 3);
        assert_eq!(t[0].spec.body, b"hi");
        assert_eq!(t[1].spec.method, "GET");
        let e = parse("{\"url\": \"/a\"}\n{\"method\": \"GET\"}\n", Some(&base())).unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn bad_files_name_the_line() {
        for (file, line, words) in [
            ("", 0, "no targets"),
            ("POST /a\nnot a header\n", 2, "header"),
            ("# weight=0\nGET /a\n", 1, "weight"),
            ("GET /a\n###\nlowercase /b\n", 3, "METHOD URL"),
            ("{\"url\": 3}\n", 1, "url"),
            ("PUT /a\n\n@/nonexistent/body\n", 1, "cannot read body file"),
            ("ftp://127.0.0.1:8080/a\n", 1, "scheme"),
        ] {
            let e = parse(file, Some(&base())).unwrap_err();
            assert_eq!(e.line, line, "{file:?}: {e}");
            assert!(e.to_string().contains(words), "{file:?}: {e}");
        }
    }
}
