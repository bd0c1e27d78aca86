use crate::{RequestError, Target};

/// What to send. Built from user input, checked, then [`encode`](Self::encode)d
/// once; the engine never touches it again during the run.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Where to.
    pub target: Target,
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// Extra headers as `(name, value)`; a name equal (ignoring case) to a
    /// default header (`Host`, `User-Agent`, `Content-Length`) replaces it.
    pub headers: Vec<(String, String)>,
    /// The request body; sent with `Content-Length` when not empty.
    pub body: Vec<u8>,
}

impl RequestSpec {
    /// A `GET` with no extra headers.
    pub fn get(target: Target) -> RequestSpec {
        RequestSpec {
            target,
            method: "GET".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Parses a `Name: value` header as given on a command line.
    ///
    /// ```
    /// let (n, v) = proto::RequestSpec::parse_header("Accept:  text/plain ").unwrap();
    /// assert_eq!((n.as_str(), v.as_str()), ("Accept", "text/plain"));
    /// assert!(proto::RequestSpec::parse_header("no colon").is_err());
    /// ```
    pub fn parse_header(h: &str) -> Result<(String, String), RequestError> {
        let bad = || RequestError::InvalidHeader(h.to_string());
        let (name, value) = h.split_once(':').ok_or_else(bad)?;
        let name = name.trim();
        let value = value.trim();
        if !is_token(name) || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(bad());
        }
        Ok((name.to_string(), value.to_string()))
    }

    /// Whether responses to this request carry no body whatever their
    /// headers say (the framer must know this for `HEAD`).
    pub fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }

    /// The request as bytes, ready to be sent as many times as needed.
    pub fn encode(&self) -> Result<Vec<u8>, RequestError> {
        if !is_token(&self.method) {
            return Err(RequestError::InvalidMethod(self.method.clone()));
        }
        for (n, v) in &self.headers {
            if !is_token(n) || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(RequestError::InvalidHeader(format!("{n}: {v}")));
            }
        }
        let overridden = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let mut out = Vec::with_capacity(128 + self.body.len());
        let mut line = |parts: &[&[u8]]| {
            for p in parts {
                out.extend_from_slice(p);
            }
            out.extend_from_slice(b"\r\n");
        };
        line(&[
            self.method.as_bytes(),
            b" ",
            self.target.path_and_query.as_bytes(),
            b" HTTP/1.1",
        ]);
        if !overridden("host") {
            line(&[b"Host: ", self.target.host_header.as_bytes()]);
        }
        if !overridden("user-agent") {
            line(&[b"User-Agent: urk/", crate::VERSION.as_bytes()]);
        }
        for (n, v) in &self.headers {
            line(&[n.as_bytes(), b": ", v.as_bytes()]);
        }
        if !self.body.is_empty() && !overridden("content-length") {
            line(&[b"Content-Length: ", self.body.len().to_string().as_bytes()]);
        }
        line(&[]);
        out.extend_from_slice(&self.body);
        Ok(out)
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> RequestSpec {
        RequestSpec::get(Target::parse(url).unwrap())
    }

    #[test]
    fn default_port_is_left_out_of_host() {
        let r = spec("http://example.test/").encode().unwrap();
        let s = String::from_utf8(r).unwrap();
        assert!(s.contains("\r\nHost: example.test\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn user_headers_override_defaults_and_body_gets_length() {
        let mut s = spec("http://127.0.0.1:81/p");
        s.method = "POST".into();
        s.headers.push(("host".into(), "other".into()));
        s.headers.push(("User-Agent".into(), "me".into()));
        s.body = b"abc".to_vec();
        let out = String::from_utf8(s.encode().unwrap()).unwrap();
        assert!(out.starts_with("POST /p HTTP/1.1\r\n"));
        assert!(!out.contains("127.0.0.1"), "{out}");
        assert!(!out.contains("urk/"), "{out}");
        assert!(out.contains("host: other\r\n"));
        assert!(out.ends_with("Content-Length: 3\r\n\r\nabc"), "{out}");
    }

    #[test]
    fn bad_method_and_header_are_rejected() {
        let mut s = spec("http://a/");
        s.method = "GE T".into();
        assert!(matches!(s.encode(), Err(RequestError::InvalidMethod(_))));
        assert!(RequestSpec::parse_header("X: a\rb").is_err());
        assert!(RequestSpec::parse_header(": v").is_err());
    }

    #[test]
    fn schemes() {
        let t = Target::parse("https://a/").unwrap();
        assert!(t.tls);
        assert_eq!((t.port, t.host_header.as_str()), (443, "a"));
        let t = Target::parse("https://a:8443/").unwrap();
        assert_eq!((t.port, t.host_header.as_str()), (8443, "a:8443"));
        assert!(!Target::parse("http://a/").unwrap().tls);
        assert!(matches!(
            Target::parse("localhost:8080"),
            Err(RequestError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Target::parse("nope"),
            Err(RequestError::InvalidUrl(_))
        ));
        let t = Target::parse("http://localhost").unwrap();
        assert_eq!((t.port, t.path_and_query.as_str()), (80, "/"));
    }
}
