//! The documentation says only what exists: every configuration key it names is one the parser
//! accepts, every `oidcctl` command it shows runs, every message it quotes occurs in the code,
//! every repository path and cited test exists, every figure in a README table comes from a file
//! the benchmark or the tests write (or is marked as a dated measurement with its command), the
//! protocol document lists every message tag, and "From source" names the packages a build
//! needs. An administrator who finds one wrong statement stops trusting the rest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use oidcd_tests::paths;

/// Prose documents, read by people.
fn prose() -> Vec<PathBuf> {
    let root = paths::workspace_dir();
    let mut files = vec![
        root.join("README.md"),
        root.join("packaging/README.md"),
        root.join("packaging/pam/README.md"),
        root.join("pam_oidc/README.md"),
        root.join("fuzz/README.md"),
    ];
    files.extend(files_in(&root.join("docs"), "md"));
    files.retain(|f| f.is_file());
    files
}

/// Manual pages (roff) and the commented default configuration.
fn manuals() -> Vec<PathBuf> {
    let root = paths::workspace_dir();
    let mut files = files_in(&root.join("packaging/man"), "8");
    files.extend(files_in(&root.join("packaging/man"), "5"));
    files.push(root.join("packaging/config/oidcd.toml"));
    files
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_in(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(paths::workspace_dir())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Roff text as a reader sees it.
fn unroff(text: &str) -> String {
    text.replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\fP", "")
        .replace("\\-", "-")
        .replace("\\(em", "-")
        .replace("\\&", "")
}

/// Inline code spans and fenced code blocks of a Markdown text, with their line numbers.
fn code_spans(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push((i + 1, line.to_string()));
            continue;
        }
        for (j, part) in line.split('`').enumerate() {
            if j % 2 == 1 {
                out.push((i + 1, part.to_string()));
            }
        }
    }
    out
}

/// Every place a document shows code: Markdown code, and whole lines of manuals.
fn code_everywhere() -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for f in prose() {
        for (line, code) in code_spans(&read(&f)) {
            out.push((rel(&f), line, code));
        }
    }
    for f in manuals() {
        if f.extension().is_some_and(|x| x == "toml") {
            continue;
        }
        let mut example = false;
        for (i, line) in read(&f).lines().enumerate() {
            match line.trim() {
                ".nf" | ".EX" => example = true,
                ".fi" | ".EE" => example = false,
                _ => {}
            }
            if example || line.starts_with(".B ") {
                out.push((rel(&f), i + 1, unroff(line)));
                continue;
            }
            for bold in line.split("\\fB").skip(1) {
                let span = bold.split("\\f").next().unwrap_or("");
                out.push((rel(&f), i + 1, unroff(span)));
            }
        }
    }
    out
}

/// The configuration's section names, from the shipped file (`[section]`, commented or not).
fn config_sections() -> BTreeSet<String> {
    read(&paths::workspace_dir().join("packaging/config/oidcd.toml"))
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches('#').trim();
            let name = l.strip_prefix('[')?.strip_suffix(']')?;
            let name = name.trim_matches(|c| c == '[' || c == ']');
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then(|| name.to_string())
        })
        .collect()
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// `section.key` references anywhere in the documents, and the keys of README's configuration
/// table (a row per `[section]`, keys in code spans outside parentheses).
fn documented_keys() -> BTreeSet<(String, String, String)> {
    let sections = config_sections();
    let mut keys = BTreeSet::new();
    let mut texts: Vec<(PathBuf, String)> =
        prose().into_iter().map(|f| (f.clone(), read(&f))).collect();
    texts.extend(
        manuals()
            .into_iter()
            .filter(|f| f.extension().is_some_and(|x| x == "8"))
            .map(|f| (f.clone(), unroff(&read(&f)))),
    );
    for (file, text) in &texts {
        let bytes: Vec<char> = text.chars().collect();
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut i = 0;
        while i < bytes.len() {
            let after_path = i > 0 && matches!(bytes[i - 1], '.' | '/' | '-');
            if !word(bytes[i]) || (i > 0 && word(bytes[i - 1])) || after_path {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            let first: String = bytes[start..i].iter().collect();
            if i + 1 < bytes.len() && bytes[i] == '.' && sections.contains(&first) {
                let kstart = i + 1;
                let mut k = kstart;
                while k < bytes.len() && word(bytes[k]) {
                    k += 1;
                }
                let key: String = bytes[kstart..k].iter().collect();
                let followed_by_word =
                    k < bytes.len() && bytes[k] == '.' && k + 1 < bytes.len() && word(bytes[k + 1]);
                if is_key(&key) && !followed_by_word {
                    keys.insert((first, key, rel(file)));
                }
                i = k;
            }
        }
    }
    let readme = paths::workspace_dir().join("README.md");
    for line in read(&readme).lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Some(section) = cells[1]
            .strip_prefix("`[")
            .and_then(|s| s.strip_suffix("]`"))
        else {
            continue;
        };
        let mut depth = 0usize;
        let outside: String = cells[2]
            .chars()
            .filter(|&c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => return depth == 0,
                }
                false
            })
            .collect();
        for (j, part) in outside.split('`').enumerate() {
            if j % 2 == 1 && is_key(part) {
                keys.insert((section.to_string(), part.to_string(), rel(&readme)));
            }
        }
    }
    keys
}

/// Every `section.key` the documents name is accepted by the configuration parser.
#[test]
fn every_documented_config_key_exists() {
    let keys = documented_keys();
    assert!(keys.len() > 20, "too few keys found: {keys:?}");
    let dir = oidcd_tests::util::TempDir::new("docs-keys");
    let mut unknown = Vec::new();
    let mut checked = BTreeSet::new();
    for (section, key, file) in &keys {
        if !checked.insert((section.clone(), key.clone())) {
            continue;
        }
        // A value of the wrong type still proves the key exists: the parser then complains
        // about the value, not about an unknown field.
        let cfg = dir.write(
            &format!("{section}.{key}.toml"),
            format!("[{section}]\n{key} = 0\n"),
            0o600,
        );
        let out = Command::new(paths::oidcctl())
            .args(["config", "check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("unknown field") {
            unknown.push(format!(
                "{section}.{key} (named in {file}): {}",
                text.trim()
            ));
        }
    }
    assert!(
        unknown.is_empty(),
        "documented keys the parser does not know:\n{}",
        unknown.join("\n")
    );
}

/// `oidcctl WORDS --help`: the help text, or the first line of the error.
fn help(words: &[&str]) -> Result<String, String> {
    let out = Command::new(paths::oidcctl())
        .args(words)
        .arg("--help")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string())
    }
}

/// Every `oidcctl` command line the documents show is one oidcctl accepts.
#[test]
fn every_documented_oidcctl_command_exists() {
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, line, code) in code_everywhere() {
        let mut rest = code.as_str();
        while let Some(at) = rest.find("oidcctl ") {
            let before_ok = at == 0
                || !rest[..at]
                    .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '/');
            let after = &rest[at + "oidcctl ".len()..];
            rest = after;
            if !before_ok {
                continue;
            }
            let words: Vec<&str> = after
                .split_whitespace()
                .take_while(|w| is_key(&w.replace('-', "_")))
                .take(3)
                .collect();
            if words.is_empty() || !seen.insert(words.join(" ")) {
                continue;
            }
            // A command group (`user`, `cache`) must be followed by one of its commands; after
            // a leaf command, the words are arguments or prose.
            let group = match help(&words[..1]) {
                Ok(text) => text.contains("\nCommands:"),
                Err(e) => {
                    bad.push(format!("{file}:{line}: `oidcctl {}`: {e}", words[0]));
                    continue;
                }
            };
            if group && words.len() > 1 {
                if let Err(e) = help(&words[..2]) {
                    bad.push(format!(
                        "{file}:{line}: `oidcctl {}`: {e}",
                        words[..2].join(" ")
                    ));
                }
            }
        }
    }
    assert!(seen.len() > 10, "too few commands found: {seen:?}");
    assert!(
        bad.is_empty(),
        "documented oidcctl commands that do not exist:\n{}",
        bad.join("\n")
    );
}

/// The paragraphs of a Markdown text outside code (fences and inline code removed), each with
/// the number of its first line.
fn paragraphs(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || line.trim().is_empty() {
            out.extend(cur.take());
            continue;
        }
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(j, _)| j % 2 == 0)
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
            .join(" ");
        let entry = cur.get_or_insert_with(|| (i + 1, String::new()));
        entry.1.push(' ');
        entry.1.push_str(&prose);
    }
    out.extend(cur);
    out
}

/// Messages printed by other programs, which the documents may quote.
const OTHER_PROGRAMS_MESSAGES: &[(&str, &str)] = &[("no such user", "id(1), getent(1)")];

/// String literals of the product's Rust sources.
fn product_literals() -> Vec<String> {
    let root = paths::workspace_dir();
    let mut out = Vec::new();
    for dir in ["daemon/src", "pam_oidc/src", "nss_oidc/src", "proto/src"] {
        for f in files_in(&root.join(dir), "rs") {
            let text = read(&f);
            let mut chars = text.chars().peekable();
            let mut cur = String::new();
            let mut inside = false;
            while let Some(c) = chars.next() {
                match (inside, c) {
                    (false, '"') => {
                        inside = true;
                        cur.clear();
                    }
                    (true, '\\') => match chars.next() {
                        Some('\n') => {
                            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                                chars.next();
                            }
                        }
                        Some('n') => cur.push('\n'),
                        Some(other) => cur.push(other),
                        None => {}
                    },
                    (true, '"') => {
                        inside = false;
                        out.push(cur.clone());
                    }
                    (true, c) => cur.push(c),
                    (false, '\'') => {
                        // A char literal such as '"' must not open a string.
                        let a = chars.next();
                        if a == Some('\\') {
                            chars.next();
                        }
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// True when `quote` can be a piece of what the format string `lit` prints (each `{...}` stands
/// for one word: a name, a number or a path).
fn renders(lit: &str, quote: &str) -> bool {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in lit.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    parts.push(std::mem::take(&mut cur));
                }
            }
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 => cur.push(c),
            _ => {}
        }
    }
    parts.push(cur);
    // quote = tail of parts[i] + any + parts[i+1] + any + ... + head of parts[j]
    fn rest_matches(parts: &[String], q: &str) -> bool {
        let Some((first, more)) = parts.split_first() else {
            return q.is_empty();
        };
        if first.starts_with(q) {
            return true;
        }
        let Some(after) = q.strip_prefix(first.as_str()) else {
            return false;
        };
        if more.is_empty() {
            return after.is_empty();
        }
        // A placeholder absorbs one word (a name, a number, a path) before the next part.
        (1..=after.len())
            .filter(|&k| after.is_char_boundary(k) && !after[..k].contains(char::is_whitespace))
            .any(|k| rest_matches(more, &after[k..]))
    }
    for (i, p) in parts.iter().enumerate() {
        for (start, _) in p.char_indices() {
            let tail = &p[start..];
            if tail.starts_with(quote) {
                return true;
            }
            if let Some(after) = quote.strip_prefix(tail) {
                if i + 1 < parts.len()
                    && (1..=after.len())
                        .filter(|&k| {
                            after.is_char_boundary(k) && !after[..k].contains(char::is_whitespace)
                        })
                        .any(|k| rest_matches(&parts[i + 1..], &after[k..]))
                {
                    return true;
                }
            }
        }
    }
    false
}

/// Every message the documents quote ("…" of three words or more) is printed by the product, or
/// is a known message of another program.
#[test]
fn every_quoted_message_occurs_in_the_code() {
    let literals = product_literals();
    assert!(literals.len() > 500, "too few literals: {}", literals.len());
    let mut missing = Vec::new();
    for f in prose() {
        for (line, paragraph) in paragraphs(&read(&f)) {
            for (j, part) in paragraph.split('"').enumerate() {
                let words = part.split_whitespace().count();
                if j % 2 == 0 || words < 3 || part.contains('{') {
                    continue;
                }
                let part = part.split_whitespace().collect::<Vec<_>>().join(" ");
                if OTHER_PROGRAMS_MESSAGES.iter().any(|(m, _)| *m == part) {
                    continue;
                }
                if !literals.iter().any(|l| renders(l, &part)) {
                    missing.push(format!("{}:{line}: \"{part}\"", rel(&f)));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "quoted messages that no code prints (fix the quote, or list another program's message \
         in OTHER_PROGRAMS_MESSAGES):\n{}",
        missing.join("\n")
    );
}

/// The quoted-message matcher understands format strings.
#[test]
fn renders_matches_pieces_of_format_strings() {
    assert!(renders(
        "too many logins in progress for {user}",
        "too many logins in progress for alice"
    ));
    assert!(renders("a {x} b c", "b c"));
    assert!(renders(
        "database {} unusable: {e}",
        "database /x/cache.db unusable: corrupt"
    ));
    assert!(!renders(
        "edit {shown}: remove oidc from the {db} line",
        "the identity provider is unavailable"
    ));
    assert!(!renders(
        "the provider failed",
        "the identity provider is unavailable"
    ));
}

/// Every repository path the documents name exists, and every test they cite as `file::test`.
#[test]
fn every_named_path_and_test_exists() {
    let root = paths::workspace_dir();
    let tops = [
        "daemon/",
        "proto/",
        "nss_oidc/",
        "pam_oidc/",
        "tests/",
        "packaging/",
        "docs/",
        "fuzz/",
        "demo/",
        ".ci/",
    ];
    let mut missing = Vec::new();
    for (file, line, code) in code_everywhere() {
        for token in code.split_whitespace() {
            let token =
                token.trim_matches(|c: char| matches!(c, ',' | ';' | ')' | '(' | ':' | '.' | '"'));
            let path = token.split("::").next().unwrap_or(token);
            if tops.iter().any(|t| path.starts_with(t))
                && !path.contains(['*', '<', '{', '$'])
                && !root.join(path).exists()
            {
                missing.push(format!("{file}:{line}: {path}"));
            }
        }
        // `binary::test_name` where tests/tests/binary.rs exists.
        if let Some((bin, test)) = code.trim().split_once("::") {
            let bin_file = root.join("tests/tests").join(format!("{bin}.rs"));
            if is_key(bin)
                && is_key(test)
                && bin_file.is_file()
                && !read(&bin_file).contains(&format!("fn {test}("))
            {
                missing.push(format!("{file}:{line}: test {bin}::{test}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but missing:\n{}",
        missing.join("\n")
    );
}

/// Figures in README's tables come from files the benchmark or the tests write, or from the
/// tests and code that assert them (named in a `<!-- figures: PATH, PATH -->` comment above the
/// table, and each figure occurs in one of them), or the table is introduced as a measurement
/// with its date (YYYY-MM-DD) and command.
#[test]
fn readme_table_figures_have_a_source() {
    let root = paths::workspace_dir();
    let readme = read(&root.join("README.md"));
    let lines: Vec<&str> = readme.lines().collect();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with('|') {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].starts_with('|') {
            i += 1;
        }
        let table = &lines[start..i];
        let figures: Vec<String> = table.iter().flat_map(|l| figures_in(l)).collect();
        let intro = lines[start.saturating_sub(6)..start].join("\n");
        if figures.is_empty() && !intro.contains("<!-- figures: ") {
            continue;
        }
        if let Some(srcs) = intro
            .split("<!-- figures: ")
            .nth(1)
            .and_then(|s| s.split(" -->").next())
        {
            let mut data = String::new();
            for src in srcs.split(',').map(str::trim) {
                match std::fs::read_to_string(root.join(src)) {
                    Ok(text) => data.push_str(&text),
                    Err(_) => bad.push(format!(
                        "README.md:{}: figures file {src} missing",
                        start + 1
                    )),
                }
            }
            let numbers = numbers_in(&data);
            // With a source named, every number of the table's body is checked, units or not.
            let every: Vec<String> = table
                .iter()
                .skip(2)
                .flat_map(|l| l.split('|').skip(2))
                .flat_map(|cell| {
                    cell.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
                        .map(|t| t.trim_matches(['.', ',']).to_string())
                        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
                        .collect::<Vec<_>>()
                })
                .collect();
            for f in figures.into_iter().chain(every) {
                if !data.contains(&f) && !rounds_from(&f, &numbers) {
                    bad.push(format!("README.md:{}: {f} is not in {srcs}", start + 1));
                }
            }
        } else if !(intro.to_lowercase().contains("measured")
            && has_date(&intro)
            && intro.contains('`'))
        {
            bad.push(format!(
                "README.md:{}: a table of figures ({}) with no <!-- figures: FILE --> source and no \
                 dated measurement with its command",
                start + 1,
                figures.join(", ")
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Every number in `text` (thousands separators dropped).
fn numbers_in(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .filter_map(|t| t.trim_matches(['.', ',']).replace(',', "").parse().ok())
        .collect()
}

/// True when `figure` (as written in README: `2818`, `1.26`, `100,000`) is one of `numbers`
/// rounded to the figure's own precision.
fn rounds_from(figure: &str, numbers: &[f64]) -> bool {
    let plain = figure.replace(',', "");
    let Ok(value) = plain.parse::<f64>() else {
        return false;
    };
    let decimals = plain.split('.').nth(1).map_or(0, str::len) as i32;
    let scale = 10f64.powi(decimals);
    numbers
        .iter()
        .any(|n| ((n * scale).round() - value * scale).abs() < 0.5)
}

/// Numbers with a unit of time, size or ratio in a line of a table.
fn figures_in(line: &str) -> Vec<String> {
    let units = ["µs", "us", "ms", "s", "x", "KB", "MB", "GB", "%", "ns"];
    let mut out = Vec::new();
    let cs: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        if cs[i].is_ascii_digit()
            && (i == 0 || !(cs[i - 1].is_ascii_alphanumeric() || cs[i - 1] == '_'))
        {
            let s = i;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.' || cs[i] == ',') {
                i += 1;
            }
            let num: String = cs[s..i]
                .iter()
                .collect::<String>()
                .trim_end_matches(['.', ','])
                .to_string();
            let rest: String = cs[i..].iter().collect();
            let rest = rest.trim_start();
            if units.iter().any(|u| {
                rest.starts_with(u)
                    && !rest[u.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
            }) {
                out.push(num);
            }
        } else {
            i += 1;
        }
    }
    out
}

fn has_date(text: &str) -> bool {
    let cs: Vec<char> = text.chars().collect();
    cs.windows(10).any(|w| {
        w.iter().enumerate().all(|(k, c)| match k {
            4 | 7 => *c == '-',
            _ => c.is_ascii_digit(),
        })
    })
}

/// Every message tag of the protocol and every account, login-failure and error code is in
/// docs/protocol.md.
#[test]
fn protocol_doc_lists_every_message() {
    let root = paths::workspace_dir();
    let doc = read(&root.join("docs/protocol.md"));
    let mut missing = Vec::new();
    for (file, enums) in [
        ("proto/src/message.rs", &["Request", "Response"][..]),
        (
            "proto/src/types.rs",
            &["AccountStatus", "LoginFailure", "ErrorCode"][..],
        ),
    ] {
        let text = read(&root.join(file));
        for e in enums {
            let variants = enum_variants(&text, e);
            assert!(!variants.is_empty(), "no variants of {e} in {file}");
            for v in variants {
                if ![format!("`{v}"), format!(" {v}"), format!("\"{v}\"")]
                    .iter()
                    .any(|p| doc.contains(p.as_str()))
                {
                    missing.push(format!("{e}::{v}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/protocol.md does not mention: {}",
        missing.join(", ")
    );
}

/// The snake_case names of the variants of `pub enum name` in Rust source `text`.
fn enum_variants(text: &str, name: &str) -> Vec<String> {
    let Some(start) = text.find(&format!("pub enum {name} {{")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text[start..].lines().skip(1) {
        if line.starts_with('}') {
            break;
        }
        let Some(v) = line.strip_prefix("    ") else {
            continue;
        };
        if !v.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let ident: String = v
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let mut snake = String::new();
        for (k, c) in ident.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if k > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            } else {
                snake.push(c);
            }
        }
        out.push(snake);
    }
    out
}

/// README's "From source" section names the packages a build needs, which CI installs.
#[test]
fn from_source_names_the_build_dependencies() {
    let root = paths::workspace_dir();
    let readme = read(&root.join("README.md"));
    let ci = read(&root.join(".ci/run"));
    let section = readme
        .split("### From source")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a \"### From source\" section");
    for pkg in ["gcc", "libc6-dev", "libpam0g-dev"] {
        assert!(
            ci.contains(pkg),
            ".ci/run no longer installs {pkg}: update this list"
        );
        assert!(
            section.contains(pkg),
            "README's From source does not name the build dependency {pkg}"
        );
    }
}

/// Every file under /usr that the documents (and the commented default configuration) say the
/// package installs for oidcd is among the deb's or the rpm's assets.
#[test]
fn every_named_installed_file_is_packaged() {
    let root = paths::workspace_dir();
    let manifest = read(&root.join("daemon/Cargo.toml"));
    // Asset destinations: the second string of a deb asset line, `dest = "..."` of an rpm one.
    let mut installed: Vec<String> = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if let Some(rest) = line.split("dest = \"").nth(1) {
            installed.extend(rest.split('"').next().map(str::to_string));
        } else if line.starts_with("[\"") {
            if let Some(dest) = line.split('"').nth(3) {
                installed.push(format!("/{}", dest.trim_start_matches('/')));
            }
        }
    }
    installed.push("/usr/lib/systemd/system/oidcd.service".into());
    assert!(installed.len() > 10, "assets not found: {installed:?}");
    let mut texts: Vec<(String, String)> = prose().iter().map(|f| (rel(f), read(f))).collect();
    texts.extend(manuals().iter().map(|f| (rel(f), unroff(&read(f)))));
    let mut missing = Vec::new();
    for (file, text) in &texts {
        for (i, line) in text.lines().enumerate() {
            for token in line.split(|c: char| {
                c.is_whitespace() || matches!(c, '`' | '(' | ')' | ',' | ';' | '"')
            }) {
                let path = token.trim_end_matches(['.', ':']);
                if !path.starts_with("/usr/")
                    || !path.contains("oidc")
                    || path.contains(['$', '<', '*', '{'])
                {
                    continue;
                }
                let dir = format!("{}/", path.trim_end_matches('/'));
                let ok = installed.iter().any(|a| {
                    let a = a.replace("x86_64-linux-gnu/", "");
                    let p = path.replace("x86_64-linux-gnu/", "");
                    a == p
                        || a == format!("{p}.gz")
                        || a.starts_with(&dir.replace("x86_64-linux-gnu/", ""))
                });
                if !ok {
                    missing.push(format!("{file}:{}: {path}", i + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named as installed but not in any package:\n{}",
        missing.join("\n")
    );
}
