//! A job log as HTML: ANSI colours (SGR) become classed spans, GitLab's `section_start` /
//! `section_end` markers become collapsible `<details>` (closed for `[collapsed=true]`, with
//! the section's duration), carriage returns keep the last rewrite of a line, and every
//! character of the log is escaped. Pure.

/// Renders a log. Never panics on any input.
pub fn render(log: &str) -> String {
    let mut out = String::with_capacity(log.len() + log.len() / 4);
    let mut style = Style::default();
    let mut open_sections = 0usize;
    let mut durations = durations(log).into_iter();
    for line in log.split_inclusive('\n') {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if let Some(rest) = marker(line, "section_start:") {
            let header = after_marker(rest);
            let collapsed = rest.split('\r').next().unwrap_or_default().contains("[collapsed=true]");
            out.push_str(if collapsed {
                "<details class=\"section\"><summary>"
            } else {
                "<details class=\"section\" open><summary>"
            });
            render_text(header, &mut style, &mut out);
            if let Some(Some(secs)) = durations.next() {
                out.push_str(&format!(
                    "<span class=\"section-duration\">{:02}:{:02}</span>",
                    secs / 60,
                    secs % 60
                ));
            }
            out.push_str("</summary>");
            open_sections += 1;
            continue;
        }
        if marker(line, "section_end:").is_some() {
            if open_sections > 0 {
                out.push_str("</details>");
                open_sections -= 1;
            }
            continue;
        }
        let visible = line.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
        out.push_str("<span class=\"line\">");
        render_text(visible, &mut style, &mut out);
        out.push_str("</span>");
    }
    for _ in 0..open_sections {
        out.push_str("</details>");
    }
    out
}

/// Each section's duration in seconds, in the order the sections start (`None` while a section
/// has not ended, or when its times do not read).
fn durations(log: &str) -> Vec<Option<u64>> {
    let time = |rest: &str| rest.split(':').next().and_then(|t| t.trim().parse::<u64>().ok());
    let mut out = Vec::new();
    let mut open: Vec<(usize, Option<u64>)> = Vec::new();
    for line in log.split('\n') {
        if let Some(rest) = marker(line, "section_start:") {
            open.push((out.len(), time(rest)));
            out.push(None);
        } else if let Some(rest) = marker(line, "section_end:")
            && let Some((index, started)) = open.pop()
        {
            out[index] = started.zip(time(rest)).map(|(a, b)| b.saturating_sub(a));
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

#[derive(Default, Clone, PartialEq, Eq)]
struct Style {
    fg: Option<u8>,
    bold: bool,
}

impl Style {
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
    use super::render;

    #[test]
    fn escapes_and_colours() {
        let html = render("\x1b[32;1m$ echo <b>&\x1b[0;m\nplain\n");
        assert_eq!(
            html,
            "<span class=\"line\"><span class=\"term-fg2 term-bold\">$ echo &lt;b&gt;&amp;</span></span><span class=\"line\">plain</span>"
        );
    }

    #[test]
    fn sections_fold_and_carriage_returns_keep_the_last_rewrite() {
        let log = "\x1b[0Ksection_start:1:step_script\r\x1b[0KExecuting step\nprogress 10%\rprogress 100%\n\x1b[0Ksection_end:2:step_script\r\x1b[0K\nafter\n";
        let html = render(log);
        assert!(
            html.starts_with(
                "<details class=\"section\" open><summary>Executing step<span class=\"section-duration\">00:01</span></summary>"
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
        let html = render(log);
        assert!(
            html.starts_with(
                "<details class=\"section\"><summary>Install<span class=\"section-duration\">01:15</span>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<details class=\"section\" open><summary>Still running</summary>"),
            "{html}"
        );
    }

    #[test]
    fn hostile_input_stays_text() {
        let html = render("\x1b[<script>alert(1)</script>\x1b\x1b[999999999999m\"'\n\x1b[0Ksection_end:x\n");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&quot;&#39;"));
    }
}
