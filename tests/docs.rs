//! The examples in the README and the user guide (`docs/*.md`) run: every command block is run with
//! the real binary against the embedded mock, so an example cannot rot. The convention (fences `sh`
//! and `console`, the `<!-- not run: … -->` and `<!-- exit: N -->` comments) is in `docs/README.md`.

use crate::common::{llmvolley, workspace_file};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A command longer than this is killed and fails.
const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(120);

/// Repository folders the examples read, linked into each file's working directory.
const LINKED: [&str; 3] = ["workloads", "tests/fixtures", "deploy"];

/// One fenced block of commands.
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// Each command with the 1-based line it starts on, continuation lines joined.
    commands: Vec<(usize, String)>,
    /// `<!-- not run: REASON -->` before the fence.
    not_run: Option<String>,
    /// `<!-- exit: N -->` before the fence; 0 otherwise.
    exit: i32,
}

/// The Markdown files whose blocks are run: the README, then the guide in file-name order.
fn documents() -> Vec<PathBuf> {
    let mut guide: Vec<PathBuf> = std::fs::read_dir(workspace_file("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    guide.sort();
    let mut files = vec![workspace_file("README.md")];
    files.extend(guide);
    files
}

/// The value of an annotation line `<!-- key: value -->`.
fn annotation<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    Some(inner.strip_prefix(key)?.strip_prefix(':')?.trim())
}

/// Joins lines ending in `\` with the lines after them.
fn join_continued(lines: &[(usize, &str)]) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for &(number, text) in lines {
        let (start, mut command) = pending.take().unwrap_or((number, String::new()));
        let text = if command.is_empty() {
            text.trim()
        } else {
            text.trim_start()
        };
        match text.strip_suffix('\\') {
            Some(head) => {
                command.push_str(head.trim_end());
                command.push(' ');
                pending = Some((start, command));
            }
            None => {
                command.push_str(text);
                commands.push((start, command));
            }
        }
    }
    if let Some(rest) = pending {
        commands.push(rest);
    }
    commands
}

/// The command blocks of one Markdown file. Panics, naming the line, on a block the convention
/// does not allow: a command in a fence that would not run, or a shell fence of another name.
fn blocks(path: &Path) -> Vec<Block> {
    let name = path
        .strip_prefix(workspace_file(""))
        .unwrap()
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let opening = lines[i].trim_start();
        let fence = if opening.starts_with("```") {
            "```"
        } else if opening.starts_with("~~~") {
            "~~~"
        } else {
            i += 1;
            continue;
        };
        let info = opening.trim_start_matches(fence).trim().to_string();
        let start = i;
        let mut body: Vec<(usize, &str)> = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with(fence) {
            body.push((i + 1, lines[i]));
            i += 1;
        }
        i += 1;
        let at = format!("{name}:{}", start + 1);
        assert!(
            !["bash", "shell", "zsh", "shell-session"].contains(&info.as_str()),
            "{at}: a ```{info} block: fence commands as ```sh, or a command with its output as ```console"
        );
        if info != "sh" && info != "console" {
            assert!(
                !body.iter().any(|(_, l)| l.trim_start().starts_with("$ ")),
                "{at}: a `$ ` command in a ```{info} block would never run: fence it as ```console"
            );
            continue;
        }
        // Annotations: the comment lines right above the fence.
        let mut not_run = None;
        let mut exit = 0;
        let mut above = start;
        while above > 0 && lines[above - 1].trim_start().starts_with("<!--") {
            let comment = lines[above - 1];
            if let Some(reason) = annotation(comment, "not run") {
                not_run = Some(reason.to_string());
            } else if let Some(code) = annotation(comment, "exit") {
                exit = code
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}:{above}: exit code {code:?}"));
            }
            above -= 1;
        }
        let command_lines: Vec<(usize, &str)> = if info == "sh" {
            body.into_iter()
                .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .collect()
        } else {
            // console: a `$ ` line and the lines continuing it; the rest is output.
            let mut kept = Vec::new();
            let mut continuing = false;
            for (number, l) in body {
                if let Some(command) = l.strip_prefix("$ ") {
                    kept.push((number, command));
                    continuing = command.trim_end().ends_with('\\');
                } else if continuing {
                    kept.push((number, l));
                    continuing = l.trim_end().ends_with('\\');
                }
            }
            kept
        };
        let commands = join_continued(&command_lines);
        assert!(
            !commands.is_empty(),
            "{at}: a ```{info} block without a command"
        );
        found.push(Block {
            file: name.clone(),
            line: start + 1,
            commands,
            not_run,
            exit,
        });
    }
    found
}

/// The words of a command line, the program mapped to the binary under test: `llmvolley …` and
/// `cargo run --release -- …` (the README's quick start) both run `llmvolley`.
fn command_for(line: &str) -> Result<Command, String> {
    let words = shlex::split(line).ok_or("unbalanced quotes")?;
    if let Some(shell) = words
        .iter()
        .find(|w| ["|", ">", ">>", "<", "&&", "||", ";", "&"].contains(&w.as_str()))
    {
        return Err(format!(
            "`{shell}`: a plain command is run, without a shell"
        ));
    }
    let mut words = words.into_iter();
    let program = words.next().ok_or("an empty command")?;
    let rest: Vec<String> = words.collect();
    let (mut command, args) = match program.as_str() {
        "llmvolley" => (llmvolley(), &rest[..]),
        "cargo" if rest.starts_with(&["run".into(), "--release".into(), "--".into()]) => {
            (llmvolley(), &rest[3..])
        }
        _ => (Command::new(&program), &rest[..]),
    };
    command.args(args);
    Ok(command)
}

/// A command that failed, with what it said.
struct Failure {
    at: String,
    command: String,
    problem: String,
    stderr: String,
}

/// Runs one command in `dir`, killed past the time limit: `Ok` when it exits with `expected`.
fn run_command(line: &str, dir: &Path, expected: i32) -> Result<Duration, (String, String)> {
    let mut command = command_for(line).map_err(|e| (e, String::new()))?;
    let stdout = std::fs::File::create(dir.join(".stdout")).unwrap();
    let stderr = std::fs::File::create(dir.join(".stderr")).unwrap();
    // A CI job's own step summary stays untouched by an example that writes to it.
    command
        .env("GITHUB_STEP_SUMMARY", dir.join(".step-summary.md"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| (format!("cannot start: {e}"), String::new()))?;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > COMMAND_TIME_LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let said = std::fs::read_to_string(dir.join(".stderr")).unwrap_or_default();
    match status.map(|s| s.code()) {
        Some(Some(code)) if code == expected => Ok(started.elapsed()),
        Some(Some(code)) => Err((format!("exit code {code}, expected {expected}"), said)),
        Some(None) => Err((format!("killed by a signal, expected {expected}"), said)),
        None => Err((
            format!("killed after {} s", COMMAND_TIME_LIMIT.as_secs()),
            said,
        )),
    }
}

/// A working directory for one file's commands, with the repository's folders they read.
fn working_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for linked in LINKED {
        let link = dir.path().join(linked);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(workspace_file(linked), link).unwrap();
    }
    dir
}

/// The last lines of a text.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn every_command_block_in_the_readme_and_guide_runs_against_the_mock() {
    let files: Vec<Vec<Block>> = documents().iter().map(|path| blocks(path)).collect();
    let readme_commands: Vec<&str> = files[0]
        .iter()
        .filter(|b| b.not_run.is_none())
        .flat_map(|b| b.commands.iter().map(|(_, c)| c.as_str()))
        .collect();
    assert!(
        readme_commands
            .iter()
            .any(|c| c.starts_with("cargo run --release -- run workloads/varied-1000.jsonl --mock")),
        "the README's quick start is a block that runs: {readme_commands:?}"
    );

    // Each file's commands in order, in a directory of its own (a `run --out X` then `report X`
    // chain works); two files at a time.
    let queue = std::sync::Mutex::new(files.iter());
    let ran = std::sync::Mutex::new(Vec::new());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some(blocks) = queue.lock().unwrap().next() else {
                        return;
                    };
                    let dir = working_dir();
                    for block in blocks.iter().filter(|b| b.not_run.is_none()) {
                        for (line, command) in &block.commands {
                            let at = format!("{}:{line}", block.file);
                            match run_command(command, dir.path(), block.exit) {
                                Ok(took) => ran.lock().unwrap().push((
                                    block.file.clone(),
                                    *line,
                                    format!(
                                        "{at}  [{:.1} s, exit {}]  {command}",
                                        took.as_secs_f64(),
                                        block.exit
                                    ),
                                )),
                                Err((problem, stderr)) => failures.lock().unwrap().push(Failure {
                                    at,
                                    command: command.clone(),
                                    problem,
                                    stderr,
                                }),
                            }
                        }
                    }
                }
            });
        }
    });

    let mut ran = ran.into_inner().unwrap();
    ran.sort();
    eprintln!("ran {} commands from the README and docs/:", ran.len());
    for (_, _, line) in &ran {
        eprintln!("  {line}");
    }
    eprintln!("not run:");
    for block in files.iter().flatten() {
        if let Some(reason) = &block.not_run {
            eprintln!("  {}:{}  ({reason})", block.file, block.line);
            for (_, command) in &block.commands {
                eprintln!("      {command}");
            }
        }
    }
    let failures = failures.into_inner().unwrap();
    let report: Vec<String> = failures
        .iter()
        .map(|f| {
            format!(
                "{}: `{}`: {}\nstderr:\n{}",
                f.at,
                f.command,
                f.problem,
                tail(&f.stderr, 30)
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} example command(s) failed:\n\n{}",
        failures.len(),
        report.join("\n\n")
    );
    assert!(!ran.is_empty(), "no command was run");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_in_the_readme_and_guide_points_to_a_file_or_heading_in_the_repository() {
    let root = workspace_file("").canonicalize().unwrap();
    let mut broken = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let linked = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            let Ok(resolved) = linked.canonicalize() else {
                broken.push(format!("{name}: {target}: no such file"));
                continue;
            };
            if !resolved.starts_with(&root) {
                broken.push(format!("{name}: {target}: outside the repository"));
                continue;
            }
            if !anchor.is_empty() {
                let headings = std::fs::read_to_string(&resolved).unwrap_or_default();
                let found = headings
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .any(|l| anchor_of(l.trim_start_matches('#')) == anchor);
                if !found {
                    broken.push(format!("{name}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
