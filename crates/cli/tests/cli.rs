//! Snapshot tests of the `captix` binary: exact output and exit code of each command.
//!
//! Snapshots live in `tests/snapshots/NAME.txt`; random parts (tickets, revocation ids, the
//! temporary folder) are replaced by placeholders. `SNAPSHOTS=overwrite cargo test` rewrites
//! them after a deliberate change.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("captix-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        Env { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().into_owned()
    }

    /// Runs `captix ARGS` with optional stdin; returns (exit, stdout, stderr).
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_captix"))
            .args(args)
            .current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn captix");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).expect("utf8 stdout"),
            String::from_utf8(out.stderr).expect("utf8 stderr"),
        )
    }

    /// Runs and compares with the snapshot `name`.
    fn snap(&self, name: &str, args: &[&str], stdin: Option<&str>) -> (i32, String) {
        let (code, out, err) = self.run(args, stdin);
        let shown: Vec<String> = args.iter().map(|a| self.normalise(a)).collect();
        let text = format!(
            "$ captix {}\nexit: {code}\n--- stdout\n{}--- stderr\n{}",
            shown.join(" "),
            self.normalise(&out),
            self.normalise(&err)
        );
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(format!("{name}.txt"));
        if std::env::var("SNAPSHOTS").as_deref() == Ok("overwrite") {
            std::fs::write(&file, &text).expect("write snapshot");
        } else {
            let want = std::fs::read_to_string(&file).unwrap_or_else(|_| {
                panic!(
                    "no snapshot {}; run with SNAPSHOTS=overwrite",
                    file.display()
                )
            });
            assert_eq!(text, want, "snapshot {name} differs");
        }
        (code, out)
    }

    fn normalise(&self, s: &str) -> String {
        let mut s = s.replace(&self.dir.to_string_lossy().into_owned(), "[DIR]");
        // Random parts, longest first so that a shorter one never splits a longer one.
        s = replace_tokens(
            &s,
            "captix1_",
            |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
            "[TICKET]",
        );
        s = replace_hex_runs(&s, 128, "[REVOCATION_ID]");
        // A random key's id is a protobuf varint of 4 or 5 bytes: the ticket's size varies.
        s = replace_number_after(&s, "ticket: ", "[N]");
        s = replace_number_after(&s, "\"bytes\": ", "[N]");
        // Keys are random: their ids become [KEY_ID].
        for e in std::fs::read_dir(&self.dir).expect("dir").flatten() {
            if e.path().extension().is_some_and(|x| x == "pub") {
                if let Ok(k) = captix::PublicKey::load(&e.path()) {
                    s = s.replace(&k.key_id().to_string(), "[KEY_ID]");
                }
            }
        }
        s
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn replace_tokens(s: &str, prefix: &str, body: impl Fn(char) -> bool, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i]);
        let after = &rest[i + prefix.len()..];
        let n = after.find(|c: char| !body(c)).unwrap_or(after.len());
        if n == 0 {
            out.push_str(prefix); // the bare prefix, e.g. in a message
        } else {
            out.push_str(with);
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// Replaces the decimal number that follows each `marker`.
fn replace_number_after(s: &str, marker: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(marker) {
        let start = i + marker.len();
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let n = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        out.push_str(if n > 0 { with } else { "" });
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

fn replace_hex_runs(s: &str, len: usize, with: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let n = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        if n >= len {
            out.push_str(with);
            i += n;
        } else if n == 12 && chars.get(i + n) == Some(&'…') {
            out.push_str("[ID]"); // a shortened revocation id
            i += n;
        } else if n > 0 {
            out.extend(&chars[i..i + n]);
            i += n;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// A fixed key pair in the folder (the secret written 0600 by keygen's own code path).
fn keys(env: &Env) {
    let (code, _, err) = env.run(&["keygen", "--out", "root"], None);
    assert_eq!(code, 0, "{err}");
}

const EXP: &str = "2099-01-01T00:00:00Z";
const AT: &str = "2098-06-01T00:00:00Z";

fn mint(env: &Env) -> String {
    let (code, out, err) = env.run(
        &[
            "mint",
            "--key",
            "root.key",
            "--agent",
            "billing-agent",
            "--user",
            "alice",
            "--issuer",
            "https://auth.example",
            "--tool",
            "list_invoices",
            "--tool",
            "get_invoice",
            "--tool",
            "create_refund",
            "--row",
            "*:org=acme",
            "--row",
            "create_refund:amount<=500",
            "--budget",
            "100/min",
            "--expires",
            EXP,
            "--resource",
            "https://mcp.example/invoices",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("captix1_") && out.ends_with('\n'));
    out.trim().to_string()
}

#[test]
fn help() {
    let env = Env::new("help");
    env.snap("help", &["--help"], None);
    env.snap("mint_help", &["mint", "--help"], None);
}

#[test]
fn keygen_writes_0600_and_never_overwrites() {
    let env = Env::new("keygen");
    let (code, out) = env.snap(
        "keygen_json_refused_twice_first",
        &["keygen", "--out", "k", "--json"],
        None,
    );
    assert_eq!(code, 0);
    assert!(out.contains("\"key_id\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("k.key"))
            .expect("key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (code, _) = env.snap("keygen_exists", &["keygen", "--out", "k"], None);
    assert_eq!(code, 2);
}

#[test]
fn resources_and_prompts() {
    let env = Env::new("docs");
    keys(&env);
    let base = [
        "verify",
        "--pubkey",
        "root.pub",
        "--resource",
        "https://mcp.example/docs",
        "--at",
        AT,
    ];
    let (code, t, err) = env.run(
        &[
            "mint",
            "--key",
            "root.key",
            "--agent",
            "docs-agent",
            "--user",
            "alice",
            "--uri",
            "file:///docs/public/*",
            "--prompt",
            "summarize",
            "--prompt",
            "triage",
            "--resource",
            "https://mcp.example/docs",
            "--expires",
            EXP,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    env.snap("inspect_docs", &["inspect", t.trim()], None);
    let verify = |name: &str, ticket: &str, what: &[&str]| {
        let mut args = base.to_vec();
        args.insert(1, ticket);
        args.extend_from_slice(what);
        env.snap(name, &args, None).0
    };
    assert_eq!(
        verify(
            "verify_read_allow",
            t.trim(),
            &["--uri", "file:///docs/public/a.md"]
        ),
        0
    );
    assert_eq!(
        verify(
            "verify_read_deny",
            t.trim(),
            &["--uri", "file:///etc/passwd"]
        ),
        1
    );
    // A URI that could leave a prefix on the server is a usage error, not a check.
    assert_eq!(
        verify(
            "verify_read_dot_segments",
            t.trim(),
            &["--uri", "file:///docs/public/../x"]
        ),
        2
    );
    assert_eq!(
        verify("verify_prompt_allow", t.trim(), &["--prompt", "triage"]),
        0
    );
    // No tool is granted: a tool call is denied.
    assert_eq!(
        verify(
            "verify_tool_not_granted",
            t.trim(),
            &["--tool", "list_invoices"]
        ),
        1
    );
    // Narrower patterns and prompts are written; wider ones are refused.
    let (code, sub, err) = env.run(
        &[
            "attenuate",
            t.trim(),
            "--uri",
            "file:///docs/public/2026/*",
            "--prompt",
            "summarize",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        verify(
            "verify_read_narrowed",
            sub.trim(),
            &["--uri", "file:///docs/public/a.md"]
        ),
        1
    );
    assert_eq!(
        verify(
            "verify_prompt_narrowed",
            sub.trim(),
            &["--prompt", "triage"]
        ),
        1
    );
    let (code, _) = env.snap(
        "attenuate_wider_uri",
        &["attenuate", t.trim(), "--uri", "file:///docs/*"],
        None,
    );
    assert_eq!(code, 2);
    let (code, _) = env.snap(
        "attenuate_other_prompt",
        &["attenuate", t.trim(), "--prompt", "x"],
        None,
    );
    assert_eq!(code, 2);
    let (code, none, err) = env.run(&["attenuate", t.trim(), "--no-uris", "--no-prompts"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        verify(
            "verify_read_none",
            none.trim(),
            &["--uri", "file:///docs/public/a.md"]
        ),
        1
    );
    // Narrowing the tools of a ticket that grants resources and prompts says what it left.
    let (code, both, err) = env.run(
        &[
            "mint",
            "--key",
            "root.key",
            "--agent",
            "a",
            "--user",
            "u",
            "--tool",
            "t",
            "--uri",
            "file:///d/*",
            "--prompt",
            "p",
            "--resource",
            "https://mcp.example/docs",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.run(&["attenuate", both.trim(), "--tool", "t"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("does not restrict resources and prompts")
            && err.contains("--no-uris --no-prompts"),
        "{err}"
    );
    let (code, _, err) = env.run(
        &[
            "attenuate",
            both.trim(),
            "--tool",
            "t",
            "--no-uris",
            "--prompt",
            "p",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "nothing left open: {err}");
    // Only one of --tool, --uri, --prompt.
    let (code, _, _) = env.run(
        &[
            "verify",
            t.trim(),
            "--pubkey",
            "root.pub",
            "--tool",
            "a",
            "--uri",
            "file:///a",
        ],
        None,
    );
    assert_eq!(code, 2);
}

#[test]
fn mint_attenuate_twice_inspect_verify() {
    let env = Env::new("flow");
    keys(&env);
    let t = mint(&env);
    std::fs::write(env.path("agent.ticket"), &t).expect("write");
    env.snap(
        "inspect_verified",
        &["inspect", "agent.ticket", "--pubkey", "root.pub"],
        None,
    );
    env.snap(
        "inspect_stdin_unverified_datalog",
        &["inspect", "--datalog"],
        Some(&t),
    );
    let (_, sub, _) = env.run(
        &[
            "attenuate",
            "agent.ticket",
            "--tool",
            "list_invoices",
            "--row",
            "list_invoices:status=open|paid",
            "--budget",
            "10",
        ],
        None,
    );
    let (code, subsub, err) = env.run(
        &[
            "attenuate",
            "-",
            "--expires",
            "2098-12-01T00:00:00Z",
            "--json",
        ],
        Some(&sub),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&subsub).expect("json");
    assert_eq!(v["revocation_ids"].as_array().expect("ids").len(), 3);
    let subsub = v["ticket"].as_str().expect("ticket").to_string();
    env.snap(
        "inspect_three_blocks_json",
        &["inspect", &subsub, "--json"],
        None,
    );
    let ok = [
        "verify",
        &subsub,
        "--pubkey",
        "root.pub",
        "--tool",
        "list_invoices",
        "--arg",
        "org=acme",
        "--arg",
        "status=open",
        "--resource",
        "https://mcp.example/invoices",
        "--at",
        AT,
    ];
    let (code, _) = env.snap("verify_allow", &ok, None);
    assert_eq!(code, 0);
    let row = [
        "verify",
        &subsub,
        "--pubkey",
        "root.pub",
        "--tool",
        "list_invoices",
        "--args",
        r#"{"org":"globex","status":"open"}"#,
        "--resource",
        "https://mcp.example/invoices",
        "--at",
        AT,
    ];
    let (code, _) = env.snap("verify_deny_row", &row, None);
    assert_eq!(code, 1);
    let mut json = row.to_vec();
    json.push("--json");
    let (code, out) = env.snap("verify_deny_row_json", &json, None);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["code"], "arg_denied");
    let tool = [
        "verify",
        &subsub,
        "--pubkey",
        "root.pub",
        "--tool",
        "get_invoice",
        "--arg",
        "org=acme",
        "--resource",
        "https://mcp.example/invoices",
        "--at",
        AT,
    ];
    env.snap("verify_deny_tool", &tool, None);
    let late = [
        "verify",
        &subsub,
        "--pubkey",
        "root.pub",
        "--tool",
        "list_invoices",
        "--arg",
        "org=acme",
        "--arg",
        "status=open",
        "--resource",
        "https://mcp.example/invoices",
        "--at",
        "2098-12-01T00:00:00Z",
    ];
    env.snap("verify_deny_expired", &late, None);
}

#[test]
fn tampered_and_garbage_tickets() {
    let env = Env::new("tamper");
    keys(&env);
    let t = mint(&env);
    // Change one character in the middle of the ticket.
    let mut chars: Vec<char> = t.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let (code, out, _) = env.run(
        &[
            "verify",
            &tampered,
            "--pubkey",
            "root.pub",
            "--tool",
            "list_invoices",
            "--arg",
            "org=acme",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        out.starts_with("DENY bad_signature") || out.starts_with("DENY malformed"),
        "{out}"
    );
    let (code, _) = env.snap(
        "verify_garbage",
        &[
            "verify",
            "captix1_bm90IGEgdGlja2V0",
            "--pubkey",
            "root.pub",
            "--tool",
            "t",
        ],
        None,
    );
    assert_eq!(code, 1);
    let (code, _) = env.snap(
        "inspect_garbage_stdin",
        &["inspect", "-"],
        Some("hello world\n"),
    );
    assert_eq!(code, 1);
    let (code, _) = env.snap(
        "verify_not_a_file",
        &["verify", "nope.txt", "--pubkey", "root.pub", "--tool", "t"],
        None,
    );
    assert_eq!(code, 2);
    let (code, _) = env.snap(
        "inspect_missing_pubkey",
        &["inspect", &t, "--pubkey", "other.pub"],
        None,
    );
    assert_eq!(code, 2);
    let (_, _, _) = env.run(&["keygen", "--out", "other"], None);
    let (code, out, _) = env.run(&["inspect", &t, "--pubkey", "other.pub"], None);
    assert_eq!(code, 1);
    assert!(out.contains("signatures: INVALID (unknown_key"), "{out}");
}

#[test]
fn usage_errors_have_hints_and_exit_2() {
    let env = Env::new("usage");
    keys(&env);
    let base = [
        "mint", "--key", "root.key", "--agent", "a", "--user", "u", "--tool", "t",
    ];
    let mut bad_row = base.to_vec();
    bad_row.extend(["--row", "org=acme"]);
    assert_eq!(env.snap("mint_bad_row", &bad_row, None).0, 2);
    let mut bad_budget = base.to_vec();
    bad_budget.extend(["--budget", "ten/min"]);
    assert_eq!(env.snap("mint_bad_budget", &bad_budget, None).0, 2);
    let mut bad_ttl = base.to_vec();
    bad_ttl.extend(["--ttl", "1 hour"]);
    assert_eq!(env.snap("mint_bad_ttl", &bad_ttl, None).0, 2);
    assert_eq!(
        env.snap(
            "mint_no_key_file",
            &[
                "mint",
                "--key",
                "missing.key",
                "--agent",
                "a",
                "--user",
                "u",
                "--tool",
                "t"
            ],
            None
        )
        .0,
        2
    );
    assert_eq!(
        env.snap(
            "mint_public_as_secret",
            &["mint", "--key", "root.pub", "--agent", "a", "--user", "u", "--tool", "t"],
            None
        )
        .0,
        2
    );
    assert_eq!(
        env.snap("mint_unknown_flag", &["mint", "--frobnicate"], None)
            .0,
        2
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(env.path("root.key"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        assert_eq!(env.snap("mint_loose_key_mode", &base, None).0, 2);
    }
    let (code, out, _) = env.run(
        &[
            "verify",
            "captix1_x",
            "--pubkey",
            "root.pub",
            "--tool",
            "t",
            "--arg",
            "a=1",
            "--arg",
            "a=2",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(out.contains("\"code\":\"usage\""), "{out}");
}

#[test]
fn audit_verify_and_show() {
    let env = Env::new("audit");
    // A real log written by the library's file sink.
    let sink =
        captix::audit::FileAudit::open(env.path("audit.jsonl"), captix::audit::Durability::Flush)
            .expect("open");
    use captix::audit::{AuditSink, Record, Redaction};
    for (i, org) in ["acme", "globex", "acme"].iter().enumerate() {
        let call = captix::Call::new("list_invoices", &format!(r#"{{"org":"{org}"}}"#))
            .expect("call")
            .at(4_000_000_000 + i as u64);
        let denial = captix::Denial::new(
            captix::Code::ArgDenied,
            "block 0: argument /org is not allowed (row *:/org = \"acme\")",
        );
        sink.append(Record::decision(
            &call,
            Some(("billing-agent", "alice")),
            &[],
            (*org == "globex").then_some(&denial),
            &Redaction::Keep,
        ))
        .expect("append");
    }
    drop(sink);
    assert_eq!(
        env.snap("audit_verify_ok", &["audit", "verify", "audit.jsonl"], None)
            .0,
        0
    );
    assert_eq!(
        env.snap("audit_show", &["audit", "show", "audit.jsonl"], None)
            .0,
        0
    );
    let (code, out, _) = env.run(&["audit", "show", "audit.jsonl", "--json"], None);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["intact"], true);
    assert_eq!(v["records"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["records"][1]["code"], "arg_denied");
    let text = std::fs::read_to_string(env.path("audit.jsonl")).expect("read");
    std::fs::write(
        env.path("edited.jsonl"),
        text.replacen("globex", "acme!", 1),
    )
    .expect("write");
    assert_eq!(
        env.snap(
            "audit_verify_edited",
            &["audit", "verify", "edited.jsonl", "--json"],
            None
        )
        .0,
        1
    );
    assert_eq!(
        env.snap(
            "audit_verify_missing",
            &["audit", "verify", "nope.jsonl"],
            None
        )
        .0,
        2
    );
}

#[test]
fn demo_tells_the_whole_story() {
    let env = Env::new("demo");
    let (code, out, err) = env.run(&["demo"], None);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "ALLOW",
        "DENY arg_denied",
        "DENY tool_not_granted",
        "DENY budget_exhausted",
        "DENY revoked",
        "DENY uri_not_granted",
        "DENY prompt_not_granted",
        "resources/read invoices://acme/summary\n          ALLOW",
        "hash chain intact",
        "tools/list for the sub-agent: list_invoices",
        // The issuer over HTTP: a grant from the policy, checked, revoked, audited.
        "token_type \"Bearer\", scope \"invoices:read\", expires_in 300",
        "  restriction    row list_invoices:/org = \"acme\"",
        "RFC 7009: 200\nbot       list_invoices {\"org\":\"acme\"}\n          DENY revoked",
        "GRANT                  billing-bot for svc-billing  scope \"invoices:read\"",
        "REVOKE                 billing-bot for svc-billing\n",
    ] {
        assert!(out.contains(needle), "demo lacks {needle:?}:\n{out}");
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let env = Env::new("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_captix"))
        .args(["demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take()); // the reader goes away at once
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success() || out.status.code() == Some(0),
        "{:?}",
        out.status
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let _ = env;
}

/// Safe defaults (issue 13): a minted ticket expires (one hour unless told), a time in the past
/// is refused, and an attenuation that cannot narrow is reported, not written.
#[test]
fn mint_expires_by_default_and_attenuation_only_narrows() {
    let env = Env::new("narrow");
    keys(&env);
    let base = [
        "mint", "--key", "root.key", "--agent", "a", "--user", "u", "--tool", "t", "--json",
    ];
    let (code, out, err) = env.run(&base, None);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let ticket = v["ticket"].as_str().expect("ticket").to_string();
    let (code, out, _) = env.run(&["inspect", &ticket, "--json"], None);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let expires = report["blocks"][0]["description"]["expires"]
        .as_u64()
        .expect("an expiry by default");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    assert!((now + 3500..=now + 3700).contains(&expires), "{expires}");
    // --no-expiry is the named opt-out.
    let mut forever = base.to_vec();
    forever.push("--no-expiry");
    let (code, out, _) = env.run(&forever, None);
    assert_eq!(code, 0);
    let t2: serde_json::Value = serde_json::from_str(&out).expect("json");
    let (_, out, _) = env.run(
        &["inspect", t2["ticket"].as_str().expect("t"), "--json"],
        None,
    );
    assert!(!out.contains("\"expires\""), "{out}");
    // A time in the past is refused.
    let past = [
        "mint",
        "--key",
        "root.key",
        "--agent",
        "a",
        "--user",
        "u",
        "--tool",
        "t",
        "--expires",
        "2001-01-01T00:00:00Z",
    ];
    let (code, _, err) = env.run(&past, None);
    assert_eq!(code, 2);
    assert!(err.contains("not in the future"), "{err}");
    // Attenuations that cannot narrow.
    for (args, needle) in [
        (vec!["--ttl", "2h"], "after the ticket's own"),
        (vec!["--tool", "other"], "does not allow tool \"other\""),
    ] {
        let mut a = vec!["attenuate", ticket.as_str()];
        a.extend(args.iter().copied());
        let (code, _, err) = env.run(&a, None);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, out, err) = env.run(
        &["attenuate", &ticket, "--budget", "5", "--ttl", "5min"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let child = out.trim().to_string();
    let (code, _, err) = env.run(&["attenuate", &child, "--budget", "9"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no tighter than block 1"), "{err}");
    let (code, _, err) = env.run(&["attenuate", &child, "--budget", "3"], None);
    assert_eq!(code, 0, "{err}");
}

/// Tickets are credentials: an argument holding one (a pasted `Bearer ` prefix) is never
/// echoed; arguments that are not JSON are a usage error (2), not a denial (1); a Datalog
/// check that does not parse is said in words.
#[test]
fn errors_never_echo_tickets_and_use_the_right_exit_code() {
    let env = Env::new("echo");
    keys(&env);
    let ticket = mint(&env);
    let pasted = format!("Bearer {ticket}");
    let (code, out, err) = env.run(
        &["verify", &pasted, "--pubkey", "root.pub", "--tool", "t"],
        None,
    );
    assert_eq!(code, 2);
    let body = &ticket[8..48];
    assert!(!out.contains(body) && !err.contains(body), "{out}{err}");
    assert!(err.contains("Bearer"), "{err}");
    let secretish = "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo";
    let (code, _, err) = env.run(&["inspect", secretish], None);
    assert_eq!(code, 2);
    assert!(!err.contains(secretish), "{err}");
    let (code, _, err) = env.run(
        &[
            "verify", &ticket, "--pubkey", "root.pub", "--tool", "t", "--args", "{bad",
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid --args"), "{err}");
    let (code, _, err) = env.run(
        &["attenuate", &ticket, "--datalog", "check if nonsense("],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("does not parse") && !err.contains("ParseErrors"),
        "{err}"
    );
}

/// `revoke` takes a ticket as well as an id and reports in JSON; `verify --revoked` consults
/// the file `revoke` writes; `audit show --json` prints the records.
#[test]
fn revoke_a_ticket_and_verify_against_the_file() {
    let env = Env::new("revoke");
    keys(&env);
    let ticket = mint(&env);
    let (code, child, err) = env.run(&["attenuate", &ticket, "--tool", "list_invoices"], None);
    assert_eq!(code, 0, "{err}");
    let child = child.trim().to_string();
    let verify = |t: &str| {
        env.run(
            &[
                "verify",
                t,
                "--pubkey",
                "root.pub",
                "--tool",
                "list_invoices",
                "--arg",
                "org=acme",
                "--resource",
                "https://mcp.example/invoices",
                "--at",
                AT,
                "--revoked",
                "revoked.txt",
                "--json",
            ],
            None,
        )
    };
    let (code, out, _) = verify(&child);
    assert_eq!(
        code, 0,
        "nothing revoked yet (a missing file is an empty list): {out}"
    );
    let (code, out, err) = env.run(&["revoke", &child, "--file", "revoked.txt", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["revoked"].as_array().map(Vec::len), Some(1));
    let (code, out, _) = verify(&child);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"revoked\""), "{out}");
    let (code, out, _) = verify(&ticket);
    assert_eq!(code, 0, "revoking the child leaves the parent: {out}");
    let (code, _, err) = env.run(&["revoke", "not-an-id", "--file", "revoked.txt"], None);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn issuer_check_policy_and_client_secret() {
    let env = Env::new("issuer");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/invoices/issuer.toml");
    let text = std::fs::read_to_string(example).expect("example config");
    std::fs::write(env.dir.join("issuer.toml"), &text).expect("write");
    // check-policy reads the policy only: no key, no store is touched.
    let (code, out, err) = env.run(
        &[
            "issuer",
            "check-policy",
            "issuer.toml",
            "--client",
            "refund-bot",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    for line in [
        "policy ok: refund-bot acting for svc-refunds gets scope \"invoices:read invoices:refund\"",
        "  grants         list_invoices, get_invoice, create_refund",
        "  restriction    resource http://127.0.0.1:8788/mcp",
        "  restriction    row create_refund:/org = \"acme\"",
        "  restriction    row create_refund:/amount <= 500",
        "  budget         create_refund:5 calls per 1h",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    assert!(
        !env.dir.join("issuer.db").exists(),
        "check-policy opened the store"
    );
    let (code, out, _) = env.run(
        &[
            "issuer",
            "check-policy",
            "issuer.toml",
            "--client",
            "billing-bot",
            "--scope",
            "invoices:refund",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 1, "a refused request exits 1");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["error"]["error"], "invalid_scope");
    let details = r#"[{"type":"captix","tools":["list_invoices"]}]"#;
    let (code, out, _) = env.run(
        &[
            "issuer",
            "check-policy",
            "issuer.toml",
            "--client",
            "billing-bot",
            "--details",
            details,
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["ticket"]["blocks"][0]["description"]["grants"],
        serde_json::json!(["list_invoices"])
    );
    // A bad policy names the line and the reason.
    std::fs::write(
        env.dir.join("bad.toml"),
        text.replace("amount<=500", "amount<=x"),
    )
    .expect("write");
    env.snap(
        "issuer_check_policy_bad",
        &[
            "issuer",
            "check-policy",
            "bad.toml",
            "--client",
            "billing-bot",
        ],
        None,
    );
    // client-secret: shown once, a new one each time, only for clients of the file.
    let (code, _, err) = env.run(&["keygen", "--out", "issuer"], None);
    assert_eq!(code, 0, "{err}");
    let (code, first, err) = env.run(
        &[
            "issuer",
            "client-secret",
            "--config",
            "issuer.toml",
            "billing-bot",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(first.starts_with("cxs_") && first.len() == 48, "{first}");
    assert!(err.contains("shown once"), "{err}");
    let (_, second, _) = env.run(
        &[
            "issuer",
            "client-secret",
            "--config",
            "issuer.toml",
            "billing-bot",
        ],
        None,
    );
    assert_ne!(first, second);
    let db = std::fs::read(env.dir.join("issuer.db")).expect("store");
    assert!(
        !db.windows(first.trim().len())
            .any(|w| w == first.trim().as_bytes()),
        "only the secret's hash is stored"
    );
    env.snap(
        "issuer_client_secret_unknown",
        &[
            "issuer",
            "client-secret",
            "--config",
            "issuer.toml",
            "nobody",
        ],
        None,
    );
}
