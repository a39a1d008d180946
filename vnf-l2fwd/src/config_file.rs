//! `--config-file FILE`: a forwarding mode's options as a TOML file.
//!
//! Every key is the long name of an option of the mode (`port`, `rule_ipv4`, `eth-dest`,
//! `stats-period`, `portmask`, ...; `-` and `_` are interchangeable), so the file says exactly
//! what the command line can, and `vnf-l2fwd MODE --help` documents both. Values:
//! - a string, integer or float for an option that takes a value (`stats-period = 5`,
//!   `portmask = "0x3"`, `config = "(0,0,1),(1,0,1)"`);
//! - an array for a repeatable option (`port = ["af_xdp:net1", "af_xdp:net2"]`);
//! - a boolean for a flag (`promiscuous = true`; `false` leaves it off).
//!
//! An optional `mode = "l3fwd"` names the mode, so `vnf-l2fwd --config-file FILE` runs it;
//! given both ways, they must agree. Options on the command line win over the file's. The
//! file's options are turned into command-line arguments before parsing, so a bad value gets
//! the same error (and exit code 2) as on the command line; an unknown key, a wrong type, a
//! repeated non-repeatable option or bad TOML is an error naming the file, key and line.

use clap::{Arg, ArgAction, Command};
use std::ffi::OsString;
use std::path::PathBuf;

/// The option that names the file.
pub const OPTION: &str = "--config-file";

/// The file named on the command line, if any (for error notes).
pub fn named_file(args: &[OsString]) -> Option<PathBuf> {
    find_option(args).map(|(_, _, p)| p)
}

/// Where `--config-file` is: (index, tokens it spans, path).
fn find_option(args: &[OsString]) -> Option<(usize, usize, PathBuf)> {
    for (i, a) in args.iter().enumerate().skip(1) {
        let s = a.to_string_lossy();
        if s == "--" {
            return None;
        }
        if s == OPTION {
            return args.get(i + 1).map(|p| (i, 2, PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("--config-file=") {
            return Some((i, 1, PathBuf::from(p)));
        }
    }
    None
}

/// Expands `--config-file FILE` in `args` (the whole argv) into the options it holds, placed
/// after the mode and before the command line's own options. `args` without the option come
/// back unchanged.
///
/// # Errors
/// A message naming the file and what is wrong.
pub fn expand(args: Vec<OsString>, cli: &Command) -> Result<Vec<OsString>, String> {
    let Some((at, span, path)) = find_option(&args) else { return Ok(args) };
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{OPTION} {file}: cannot read it: {e}"))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().and_then(|s| text.get(..s.start)).map(|t| t.matches('\n').count() + 1);
        match line {
            Some(l) => format!("{file}:{l}: not valid TOML: {}", e.message()),
            None => format!("{file}: not valid TOML: {}", e.message()),
        }
    })?;
    let line_of = |key: &str| -> usize {
        text.lines()
            .position(|l| {
                let l = l.trim_start().trim_start_matches('"');
                l.starts_with(key) && l[key.len()..].trim_start().trim_start_matches('"').trim_start().starts_with('=')
            })
            .map_or(0, |i| i + 1)
    };
    let at_key = |key: &str| match line_of(key) {
        0 => format!("{file}: `{key}`"),
        l => format!("{file}:{l}: `{key}`"),
    };
    // The mode: on the command line (argv[1], unless the option comes first) or in the file.
    let cli_mode = (at > 1).then(|| args[1].to_string_lossy().into_owned());
    let file_mode = match table.get("mode") {
        None => None,
        Some(toml::Value::String(m)) => Some(m.clone()),
        Some(v) => return Err(format!("{}: must be a string such as \"l3fwd\", not {}", at_key("mode"), v.type_str())),
    };
    let mode = match (&cli_mode, &file_mode) {
        (Some(c), Some(f)) if c != f => {
            return Err(format!("{}: says {f:?} but the command line runs {c:?}", at_key("mode")));
        }
        (Some(m), _) | (None, Some(m)) => m.clone(),
        (None, None) => {
            return Err(format!(
                "{OPTION} {file}: no mode: give it on the command line (vnf-l2fwd l3fwd {OPTION} {file}) or in \
                 the file (mode = \"l3fwd\")"
            ))
        }
    };
    let sub = cli
        .find_subcommand(&mode)
        .filter(|s| s.get_arguments().any(|a| a.get_long() == Some(&OPTION[2..])))
        .ok_or_else(|| {
            let modes: Vec<&str> = cli
                .get_subcommands()
                .filter(|s| s.get_arguments().any(|a| a.get_long() == Some(&OPTION[2..])))
                .map(|s| s.get_name())
                .collect();
            format!("{file}: mode {mode:?} does not take a config file (modes that do: {})", modes.join(", "))
        })?;
    let first_opt = if at > 1 { 2 } else { at + span };
    let own: Vec<&OsString> =
        args.iter().enumerate().skip(first_opt).filter(|(i, _)| !(at..at + span).contains(i)).map(|(_, a)| a).collect();
    let mut from_file: Vec<OsString> = vec![];
    // In key order (a sorted map): the order of options does not matter, the order of a
    // repeatable option's values (the ports) is the array's.
    for (key, value) in &table {
        if key == "mode" {
            continue;
        }
        let arg = find_arg(sub, key).ok_or_else(|| {
            format!(
                "{}: no such option of `vnf-l2fwd {mode}` (the keys are its long option names: see --help)",
                at_key(key)
            )
        })?;
        if arg.get_long() == Some(&OPTION[2..]) {
            return Err(format!("{}: a config file cannot name another", at_key(key)));
        }
        if given_on_command_line(arg, &own) {
            continue;
        }
        let flag = match arg.get_long() {
            Some(l) => format!("--{l}"),
            None => format!("-{}", arg.get_short().unwrap_or('?')),
        };
        let with_value = |v: &str| -> OsString {
            if arg.get_long().is_some() {
                format!("{flag}={v}").into()
            } else {
                format!("{flag}{v}").into()
            }
        };
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    from_file.push(flag.clone().into());
                }
            }
            _ if !takes_value => {
                return Err(format!("{}: is a flag: write `{key} = true`, not {}", at_key(key), value.type_str()));
            }
            toml::Value::Array(items) => {
                if !matches!(arg.get_action(), ArgAction::Append) {
                    return Err(format!("{}: takes one value, not an array", at_key(key)));
                }
                for item in items {
                    from_file.push(with_value(&scalar(item).ok_or_else(|| {
                        format!("{}: array items must be strings or numbers, not {}", at_key(key), item.type_str())
                    })?));
                }
            }
            v => from_file.push(with_value(&scalar(v).ok_or_else(|| {
                format!("{}: must be a string, number or boolean, not {}", at_key(key), v.type_str())
            })?)),
        }
    }
    let mut out: Vec<OsString> = vec![args[0].clone(), mode.into()];
    out.extend(from_file);
    // The option itself stays, so `--help` and the parsed options see it.
    out.extend(args[at..at + span].iter().cloned());
    out.extend(own.into_iter().cloned());
    Ok(out)
}

/// The argument a key names: its long name or id, `-` and `_` alike.
fn find_arg<'a>(sub: &'a Command, key: &str) -> Option<&'a Arg> {
    let norm = |s: &str| s.replace('_', "-");
    let k = norm(key);
    sub.get_arguments().find(|a| a.get_long().is_some_and(|l| norm(l) == k) || norm(a.get_id().as_str()) == k)
}

/// Whether the command line's own tokens set `arg` (`--long`, `--long=v`, `-s`, `-sV`).
fn given_on_command_line(arg: &Arg, own: &[&OsString]) -> bool {
    own.iter().map(|t| t.to_string_lossy()).any(|t| {
        let long = arg.get_long().is_some_and(|l| {
            t.strip_prefix("--").is_some_and(|r| r == l || r.strip_prefix(l).is_some_and(|v| v.starts_with('=')))
        });
        let short = arg
            .get_short()
            .is_some_and(|c| !t.starts_with("--") && t.strip_prefix('-').is_some_and(|r| r.starts_with(c)));
        long || short
    })
}

/// A TOML scalar as the command line would spell it.
fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// For tests and callers holding `&str`s.
#[cfg(test)]
fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(|s| std::ffi::OsStr::new(s).to_os_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn expand_with(file: &str, argv: &[&str]) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vnf.toml");
        std::fs::write(&path, file).unwrap();
        let p = path.to_str().unwrap();
        let argv: Vec<String> = argv.iter().map(|a| a.replace("FILE", p)).collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = expand(os(&argv), &crate::Cli::command())?;
        Ok(out.iter().map(|s| s.to_string_lossy().replace(p, "FILE")).collect())
    }

    #[test]
    fn file_options_become_arguments() {
        let f = r#"
            # l2fwd on two null ports
            port = ["null", "null,size=128"]
            portmask = "0x3"
            stats-period = 0
            duration = 0.5
            promiscuous = true
            no_mac_updating = false
            eal = "-l 0 --socket-mem 64"
        "#;
        let v = expand_with(f, &["vnf", "l2fwd", "--config-file", "FILE", "--rx-burst", "16"]).unwrap();
        assert_eq!(
            v,
            [
                "vnf",
                "l2fwd",
                "--duration=0.5",
                "--eal=-l 0 --socket-mem 64",
                "--port=null",
                "--port=null,size=128",
                "--portmask=0x3",
                "--promiscuous",
                "--stats-period=0",
                "--config-file",
                "FILE",
                "--rx-burst",
                "16"
            ]
        );
        // The whole thing parses.
        let argv: Vec<&str> = v.iter().map(String::as_str).collect();
        crate::Cli::try_parse_from(argv).unwrap();
    }

    #[test]
    fn command_line_wins_and_mode_from_file() {
        let f = "mode = \"l3fwd\"\nrule_ipv4 = \"a.txt\"\nstats-period = 5\n";
        let v = expand_with(f, &["vnf", "--config-file=FILE", "-T", "1", "--rule_ipv4=b.txt"]).unwrap();
        assert_eq!(v, ["vnf", "l3fwd", "--config-file=FILE", "-T", "1", "--rule_ipv4=b.txt"]);
        let v = expand_with(f, &["vnf", "l3fwd", "--config-file", "FILE"]).unwrap();
        assert_eq!(v[2..4], ["--rule_ipv4=a.txt", "--stats-period=5"]);
    }

    #[test]
    fn bad_files_name_file_key_and_line() {
        let e = |f: &str, argv: &[&str]| expand_with(f, argv).unwrap_err();
        let l2 = ["vnf", "l2fwd", "--config-file", "FILE"];
        let m = e("\n\nport = [\"null\"\nrx-burst = 4\n", &l2);
        assert!(m.contains("vnf.toml:4: not valid TOML"), "{m}");
        let m = e("port = [\"null\"]\nfrobnicate = 1\n", &l2);
        assert!(m.contains(":2: `frobnicate`: no such option of `vnf-l2fwd l2fwd`"), "{m}");
        let m = e("promiscuous = \"yes\"\n", &l2);
        assert!(m.contains("`promiscuous`: is a flag"), "{m}");
        let m = e("duration = [1, 2]\n", &l2);
        assert!(m.contains("`duration`: takes one value"), "{m}");
        let m = e("port = [[\"x\"]]\n", &l2);
        assert!(m.contains("array items must be"), "{m}");
        let m = e("eal = { a = 1 }\n", &l2);
        assert!(m.contains("must be a string, number or boolean"), "{m}");
        let m = e("mode = \"l3fwd\"\n", &l2);
        assert!(m.contains("says \"l3fwd\" but the command line runs \"l2fwd\""), "{m}");
        let m = e("port = [\"null\"]\n", &["vnf", "--config-file", "FILE"]);
        assert!(m.contains("no mode"), "{m}");
        let m = e("mode = \"discover\"\n", &["vnf", "--config-file", "FILE"]);
        assert!(m.contains("does not take a config file"), "{m}");
        let m = e("config-file = \"x\"\n", &l2);
        assert!(m.contains("cannot name another"), "{m}");
        let m = expand(os(&["vnf", "l2fwd", "--config-file", "/nonexistent/vnf.toml"]), &crate::Cli::command())
            .unwrap_err();
        assert!(m.contains("/nonexistent/vnf.toml: cannot read it"), "{m}");
    }

    #[test]
    fn no_option_no_change() {
        let a = os(&["vnf", "l2fwd", "--port", "null", "--", "--config-file"]);
        assert_eq!(expand(a.clone(), &crate::Cli::command()).unwrap(), a);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use clap::CommandFactory;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any file content (TOML-ish or garbage) gives arguments or an error, never a panic.
        #[test]
        fn any_file_is_an_error_or_arguments(
            body in prop::collection::vec(
                prop_oneof![
                    Just("port = [\"null\", 1]\n".to_string()),
                    Just("mode = \"txonly\"\n".to_string()),
                    Just("promiscuous = true\n".to_string()),
                    Just("[table]\n".to_string()),
                    Just("é = \"ü\"\n".to_string()),
                    "[a-z_=\\[\\]\" 0-9.\n-]{0,20}",
                    any::<String>(),
                ],
                0..6,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.toml");
            std::fs::write(&path, body.concat()).unwrap();
            let argv: Vec<OsString> = ["vnf", "l2fwd", "--config-file"].iter().map(OsString::from)
                .chain([path.into_os_string()]).collect();
            let _ = expand(argv, &crate::Cli::command());
        }
    }
}
