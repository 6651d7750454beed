//! The traps a new user meets, each refused or explained: closed pipes, dead endpoints, wrong files,
//! resume that just works.

use crate::common::{llmvolley, output_text, workspace_file};
use std::process::Stdio;

#[test]
fn a_closed_stdout_pipe_ends_quietly_with_the_runs_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    for command in ["run", "bench"] {
        let out = tmp.path().join(command);
        let mut child = llmvolley()
            .arg(command)
            .arg(&workload)
            .args(["--mock", "-q", "--out"])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -0`: the reader is gone before the first line is printed.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let (_, stderr) = output_text(&output);
        assert_eq!(output.status.code(), Some(0), "{command}: {stderr}");
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert!(
            out.join("summary.json").is_file(),
            "{command}: results are written"
        );
    }
}
