//! A job log as HTML: ANSI colours (SGR) become classed spans, GitLab's `section_start` /
//! `section_end` markers become collapsible `<details>` (closed for `[collapsed=true]`, with
//! the section's duration), carriage returns keep the last rewrite of a line, and every
//! character of the log is escaped. A live log is rendered once whole, then in appended
//! chunks (`render_chunk`) that resume from a [`Cursor`]. Pure.

use serde_json::{Value, json};

/// Where rendering stopped, carried between chunks of a live log: the colours in force and
/// the number of the last line shown (`None`: lines are not numbered, the start being unknown).
#[derive(Default, Clone, PartialEq, Eq, Debug)]
pub struct State {
    style: Style,
    line: Option<u64>,
}

impl State {
    /// A state at line `line` (the lines before it shown), default colours.
    pub fn at_line(line: Option<u64>) -> State {
        State {
            style: Style::default(),
            line,
        }
    }

    /// The state as a short token for a cursor: the style, `.`, the line number (or `-`).
    pub fn encode(&self) -> String {
        let line = self.line.map_or_else(|| "-".to_string(), |n| n.to_string());
        format!("{}.{line}", self.style.encode())
    }

    /// The state of a token made by `encode`; anything unreadable is the default.
    pub fn decode(token: &str) -> State {
        let (style, line) = token.split_once('.').unwrap_or((token, "0"));
        State {
            style: Style::decode(style),
            line: line.parse().ok(),
        }
    }
}

/// Renders a whole log whose first line is number `state.line + 1`; `live` keeps an unfinished
/// last line apart (class `tail`), as it may still be rewritten. Answers the HTML, the state and
/// the bytes of `log` rendered as finished lines (where the live script resumes). Never panics
/// on any input.
pub fn render(log: &[u8], live: bool, mut state: State) -> (String, State, usize) {
    let (raw_body, raw_tail) = split_tail(log, live);
    let body = String::from_utf8_lossy(raw_body);
    let mut out = String::with_capacity(body.len() + body.len() / 4);
    let mut open_sections = 0usize;
    let mut durations = durations(&body).into_iter();
    for piece in pieces(&body) {
        match piece {
            Piece::Open {
                header,
                collapsed,
                start,
            } => {
                out.push_str("<details class=\"section\"");
                if !collapsed {
                    out.push_str(" open");
                }
                if let Some(start) = start {
                    out.push_str(&format!(" data-start=\"{start}\""));
                }
                // Outer `None`: the section has not ended yet (the live script closes it).
                let duration = durations.next().flatten();
                if duration.is_none() {
                    out.push_str(" data-running");
                }
                out.push_str("><summary>");
                render_text(header, &mut state.style, &mut out);
                if let Some(Some(secs)) = duration {
                    push_duration(secs, &mut out);
                }
                out.push_str("</summary>");
                open_sections += 1;
            }
            Piece::Close { .. } => {
                if open_sections > 0 {
                    out.push_str("</details>");
                    open_sections -= 1;
                }
            }
            Piece::Line(text) => push_line(text, "line", &mut state, &mut out),
        }
    }
    if let Some(tail) = raw_tail {
        push_tail(tail, &state, &mut out);
    }
    for _ in 0..open_sections {
        out.push_str("</details>");
    }
    (out, state, raw_body.len())
}

/// Renders a chunk appended to a log as operations for the page's script: `{"lines": html}`,
/// `{"open": summary_html, "collapsed": bool, "start": secs}` (a section begins) and
/// `{"close": secs}` (the innermost open section ends). With `live`, an unfinished last line
/// is answered apart as the tail (rendered, not consumed). Answers the operations, the tail
/// and the bytes of `chunk` consumed.
pub fn render_chunk(chunk: &[u8], state: &mut State, live: bool) -> (Vec<Value>, Option<String>, usize) {
    let mut ops = Vec::new();
    let mut lines = String::new();
    let (raw_body, raw_tail) = split_tail(chunk, live);
    let body = String::from_utf8_lossy(raw_body);
    for piece in pieces(&body) {
        if !matches!(piece, Piece::Line(_)) && !lines.is_empty() {
            ops.push(json!({ "lines": std::mem::take(&mut lines) }));
        }
        match piece {
            Piece::Open {
                header,
                collapsed,
                start,
            } => {
                let mut summary = String::new();
                render_text(header, &mut state.style, &mut summary);
                ops.push(json!({ "open": summary, "collapsed": collapsed, "start": start }));
            }
            Piece::Close { end } => ops.push(json!({ "close": end })),
            Piece::Line(text) => push_line(text, "line", state, &mut lines),
        }
    }
    if !lines.is_empty() {
        ops.push(json!({ "lines": lines }));
    }
    let tail = raw_tail.map(|t| {
        let mut out = String::new();
        push_tail(t, state, &mut out);
        out
    });
    (ops, tail, raw_body.len())
}

/// The finished lines of `log` and, when `live` and it does not end in a newline, the
/// unfinished last line (unless that is a section marker still being written).
fn split_tail(log: &[u8], live: bool) -> (&[u8], Option<&[u8]>) {
    if !live || log.ends_with(b"\n") {
        return (log, None);
    }
    let cut = log.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let tail = &log[cut..];
    let is_marker = marker(&String::from_utf8_lossy(tail), "section_").is_some();
    (&log[..cut], (!is_marker && !tail.is_empty()).then_some(tail))
}

/// One line of a log, classified.
enum Piece<'a> {
    /// `section_start:<time>:<name>[options]\r<header>`.
    Open {
        header: &'a str,
        collapsed: bool,
        start: Option<u64>,
    },
    /// `section_end:<time>:<name>`.
    Close { end: Option<u64> },
    /// A line of text (its last carriage-return rewrite).
    Line(&'a str),
}

fn pieces(log: &str) -> impl Iterator<Item = Piece<'_>> {
    let time = |rest: &str| rest.split(':').next().and_then(|t| t.trim().parse::<u64>().ok());
    log.split_inclusive('\n').map(move |line| {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if let Some(rest) = marker(line, "section_start:") {
            Piece::Open {
                header: after_marker(rest),
                collapsed: rest.split('\r').next().unwrap_or_default().contains("[collapsed=true]"),
                start: time(rest),
            }
        } else if let Some(rest) = marker(line, "section_end:") {
            Piece::Close { end: time(rest) }
        } else {
            Piece::Line(line.rsplit('\r').find(|s| !s.is_empty()).unwrap_or(""))
        }
    })
}

/// One line, numbered (`data-n`, shown by the style sheet) when the state counts lines.
fn push_line(text: &str, class: &str, state: &mut State, out: &mut String) {
    out.push_str("<span class=\"");
    out.push_str(class);
    out.push('"');
    if let Some(n) = state.line.as_mut() {
        // The number comes back from the client in the cursor: it never overflows.
        *n = n.saturating_add(1);
        out.push_str(&format!(" data-n=\"{n}\""));
    }
    out.push('>');
    render_text(text, &mut state.style, out);
    out.push_str("</span>");
}

/// The unfinished last line as it reads now (its last carriage-return rewrite); the style
/// is not carried on, as the line will be rendered again once finished.
fn push_tail(raw: &[u8], state: &State, out: &mut String) {
    let text = String::from_utf8_lossy(raw);
    let visible = text.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
    push_line(visible, "line tail", &mut state.clone(), out);
}

fn push_duration(secs: u64, out: &mut String) {
    out.push_str(&format!(
        "<span class=\"section-duration\">{:02}:{:02}</span>",
        secs / 60,
        secs % 60
    ));
}

/// Each section's duration in seconds, in the order the sections start: `None` while a section
/// has not ended, `Some(None)` when its times do not read.
fn durations(log: &str) -> Vec<Option<Option<u64>>> {
    let mut out = Vec::new();
    let mut open: Vec<(usize, Option<u64>)> = Vec::new();
    for piece in pieces(log) {
        match piece {
            Piece::Open { start, .. } => {
                open.push((out.len(), start));
                out.push(None);
            }
            Piece::Close { end } => {
                if let Some((index, started)) = open.pop() {
                    out[index] = Some(started.zip(end).map(|(a, b)| b.saturating_sub(a)));
                }
            }
            Piece::Line(_) => {}
        }
    }
    out
}

/// The text after `name` when the line (after erase-line codes) starts with that marker.
fn marker<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let trimmed = line.trim_start_matches("\x1b[0K");
    trimmed.strip_prefix(name)
}

/// What follows `<time>:<name>\r\x1b[0K` (the section's header), or nothing.
fn after_marker(rest: &str) -> &str {
    match rest.split_once('\r') {
        Some((_, after)) => after.trim_start_matches("\x1b[0K"),
        None => "",
    }
}

/// The colours in force where rendering stopped.
#[derive(Default, Clone, PartialEq, Eq, Debug)]
struct Style {
    fg: Option<u8>,
    bold: bool,
}

impl Style {
    /// The style as a short token for a cursor (`-` or a colour, then `b` when bold).
    fn encode(&self) -> String {
        let fg = self.fg.map_or_else(|| "-".to_string(), |c| c.to_string());
        if self.bold { format!("{fg}b") } else { fg }
    }

    /// The style of a token made by `encode`; anything else is the default style.
    fn decode(token: &str) -> Style {
        let (fg, bold) = match token.strip_suffix('b') {
            Some(fg) => (fg, true),
            None => (token, false),
        };
        Style {
            fg: fg.parse::<u8>().ok().filter(|c| *c < 16),
            bold,
        }
    }

    fn classes(&self) -> Option<String> {
        let mut c = Vec::new();
        if let Some(fg) = self.fg {
            c.push(format!("term-fg{fg}"));
        }
        if self.bold {
            c.push("term-bold".to_string());
        }
        (!c.is_empty()).then(|| c.join(" "))
    }

    fn apply(&mut self, params: &str) {
        if params.is_empty() {
            *self = Style::default();
            return;
        }
        for p in params.split(';') {
            match p.parse::<u16>() {
                Ok(0) => *self = Style::default(),
                Ok(1) => self.bold = true,
                Ok(22) => self.bold = false,
                Ok(39) => self.fg = None,
                Ok(n @ 30..=37) => self.fg = Some((n - 30) as u8),
                Ok(n @ 90..=97) => self.fg = Some((n - 90 + 8) as u8),
                _ => {}
            }
        }
    }
}

/// Escapes text and turns SGR sequences into spans; other escape sequences are dropped.
fn render_text(text: &str, style: &mut Style, out: &mut String) {
    let mut span_open = false;
    let open = |style: &Style, out: &mut String| -> bool {
        match style.classes() {
            Some(c) => {
                out.push_str("<span class=\"");
                out.push_str(&c);
                out.push_str("\">");
                true
            }
            None => false,
        }
    };
    span_open |= open(style, out);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() != Some(&'[') {
                continue;
            }
            chars.next();
            let mut params = String::new();
            let mut last = None;
            for p in chars.by_ref() {
                if p.is_ascii_alphabetic() {
                    last = Some(p);
                    break;
                }
                if params.len() < 32 {
                    params.push(p);
                }
            }
            if last == Some('m') {
                if span_open {
                    out.push_str("</span>");
                }
                style.apply(&params);
                span_open = open(style, out);
            }
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    if span_open {
        out.push_str("</span>");
    }
}

#[cfg(test)]
mod tests {
    use super::{State, Style, render, render_chunk};

    fn html(log: &str) -> String {
        render(log.as_bytes(), false, State::default()).0
    }

    #[test]
    fn escapes_and_colours() {
        let html = html("\x1b[32;1m$ echo <b>&\x1b[0;m\nplain\n");
        assert_eq!(
            html,
            "<span class=\"line\"><span class=\"term-fg2 term-bold\">$ echo &lt;b&gt;&amp;</span></span><span class=\"line\">plain</span>"
        );
    }

    #[test]
    fn sections_fold_and_carriage_returns_keep_the_last_rewrite() {
        let log = "\x1b[0Ksection_start:1:step_script\r\x1b[0KExecuting step\nprogress 10%\rprogress 100%\n\x1b[0Ksection_end:2:step_script\r\x1b[0K\nafter\n";
        let html = html(log);
        assert!(
            html.starts_with(
                "<details class=\"section\" open data-start=\"1\"><summary>Executing step<span class=\"section-duration\">00:01</span></summary>"
            ),
            "{html}"
        );
        assert!(html.contains("<span class=\"line\">progress 100%</span>"));
        assert!(!html.contains("progress 10%"));
        assert!(html.contains("</details><span class=\"line\">after</span>"));
    }

    #[test]
    fn collapsed_sections_start_closed_and_show_their_duration() {
        let log = "\x1b[0Ksection_start:100:deps[collapsed=true]\r\x1b[0KInstall\nnpm ci\n\x1b[0Ksection_end:175:deps\r\x1b[0K\n\x1b[0Ksection_start:175:open\r\x1b[0KStill running\n";
        let html = html(log);
        assert!(
            html.starts_with(
                "<details class=\"section\" data-start=\"100\"><summary>Install<span class=\"section-duration\">01:15</span>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<details class=\"section\" open data-start=\"175\" data-running><summary>Still running</summary>"
            ),
            "{html}"
        );
    }

    #[test]
    fn hostile_input_stays_text() {
        let html = html("\x1b[<script>alert(1)</script>\x1b\x1b[999999999999m\"'\n\x1b[0Ksection_end:x\n");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&quot;&#39;"));
    }

    #[test]
    fn a_live_log_keeps_its_unfinished_line_apart() {
        let (html, state, consumed) = render(b"\x1b[31mred\nprogress 10%\rprogress 20%", true, State::default());
        assert_eq!(consumed, "\x1b[31mred\n".len());
        assert!(
            html.ends_with("<span class=\"line tail\"><span class=\"term-fg1\">progress 20%</span></span>"),
            "{html}"
        );
        assert_eq!(state.encode(), "1.-");
        // Finished, the same log has no tail.
        let (html, _, consumed) = render(b"a\nb", false, State::default());
        assert_eq!(consumed, 3);
        assert!(!html.contains("tail"));
    }

    #[test]
    fn chunks_resume_colours_sections_and_line_numbers_from_the_cursor() {
        let log = "\x1b[0Ksection_start:10:build[collapsed=true]\r\x1b[0KBuilding\n\x1b[1;32mok\nmore\n\x1b[0Ksection_end:75:build\r\x1b[0K\nafter\npartial";
        let cut = log.find("more").unwrap();
        let (html, mut state, consumed) = render(&log.as_bytes()[..cut], true, State::at_line(Some(0)));
        assert_eq!(consumed, cut);
        assert!(html.contains("<span class=\"line\" data-n=\"1\">"), "{html}");
        assert_eq!(state.encode(), "2b.1");
        assert_eq!(state, State::decode(&state.encode()), "the cursor's token round-trips");
        let (ops, tail, used) = render_chunk(&log.as_bytes()[cut..], &mut state, true);
        assert_eq!(used, log.len() - cut - "partial".len());
        assert_eq!(
            serde_json::Value::Array(ops),
            serde_json::json!([
                {"lines": "<span class=\"line\" data-n=\"2\"><span class=\"term-fg2 term-bold\">more</span></span>"},
                {"close": 75},
                {"lines": "<span class=\"line\" data-n=\"3\"><span class=\"term-fg2 term-bold\">after</span></span>"},
            ])
        );
        assert_eq!(
            tail.as_deref(),
            Some("<span class=\"line tail\" data-n=\"4\"><span class=\"term-fg2 term-bold\">partial</span></span>")
        );
        assert_eq!(state.encode(), "2b.3", "the tail is not counted until it is finished");
        let (ops, _, _) = render_chunk(
            b"\x1b[0Ksection_start:5:x[collapsed=true]\r\x1b[0K<b>\n",
            &mut State::default(),
            true,
        );
        assert_eq!(
            ops,
            vec![serde_json::json!({"open": "&lt;b&gt;", "collapsed": true, "start": 5})]
        );
    }

    #[test]
    fn a_marker_still_being_written_is_not_shown_as_text() {
        let (html, _, consumed) = render(b"x\n\x1b[0Ksection_sta", true, State::default());
        assert_eq!(consumed, 2);
        assert!(!html.contains("section_sta"), "{html}");
        assert_eq!(Style::decode("junk"), Style::default());
        assert_eq!(Style::decode("99b").encode(), "-b");
        assert_eq!(State::decode("x.y.z"), State::at_line(None));
        let (ops, _, _) = render_chunk(b"a\nb\n", &mut State::decode("-.18446744073709551615"), false);
        assert!(
            ops[0].to_string().contains("18446744073709551615"),
            "a hostile line number saturates"
        );
    }
}
