//! `llmvolley batch`: a workload through the OpenAI Batch API at half the live price. Split into
//! parts, each uploaded and run as one batch, polled, downloaded and joined back by `custom_id`
//! into the run folder a live run writes; `batches.json` re-attaches a restarted client to its
//! batches, so no part is uploaded or created twice.

use super::target::{create_record_files, start_target};
use crate::batch_api::{self, Batches, Part, Results};
use crate::cli::BatchArgs;
use crate::client::Client;
use crate::config::Connection;
use crate::cost::{Pricer, Tier};
use crate::record::Status;
use crate::run_folder::{self, HISTOGRAMS_DIR, SUMMARY_JSON};
use crate::stats::{RunStats, Summary, ViaBatch};
use crate::workload::{WorkItem, WorkloadReader};
use anyhow::{Context, bail};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use url::Url;

/// Each API call's bound; a file's content may take longer.
const CALL: Duration = Duration::from_secs(60);
const DOWNLOAD: Duration = Duration::from_secs(600);
/// An output file is read whole: at most this (a 50,000-line part of long answers fits).
const MAX_FILE_BYTES: usize = 1 << 30;
/// The folder inside the run folder that holds the parts' input, output and error files.
const PARTS_DIR: &str = "batch";

/// The Batch API of one endpoint, through the run's client (its key and headers).
struct Api<'a> {
    client: &'a Client,
    base: &'a Url,
}

impl Api<'_> {
    fn uri(&self, path: &str) -> anyhow::Result<http::Uri> {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.base.clone();
        // The query apart: `set_path` would percent-encode its `?`.
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        url.set_query(query);
        Ok(url.as_str().parse()?)
    }

    /// One call; a non-2xx answer is an error naming the call and the API's message (scrubbed of
    /// credentials). A GET is tried up to three times more on a transport error, a 408, 409, 429
    /// or 5xx (the SDKs' retry policy, PROTOCOL.md §4): a 24-hour wait outlives a blip.
    async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<(String, Bytes)>,
    ) -> anyhow::Result<Bytes> {
        let (content_type, bytes) = match body {
            Some((content_type, bytes)) => (Some(content_type), bytes),
            None => (None, Bytes::new()),
        };
        let limit = if path.ends_with("/content") {
            DOWNLOAD
        } else if method == Method::POST && path == "/files" {
            // An upload: a minute, and a second more per 256 KiB (200 MB at 2 Mbit/s).
            CALL + Duration::from_secs(bytes.len() as u64 / (256 * 1024))
        } else {
            CALL
        };
        let retries = if method == Method::GET { 3 } else { 0 };
        let mut attempt = 0;
        loop {
            let answer = self
                .client
                .side_request(
                    method.clone(),
                    self.uri(path)?,
                    content_type.as_deref(),
                    bytes.clone(),
                    limit,
                    MAX_FILE_BYTES,
                )
                .await;
            let retryable = match &answer {
                Err(_) => true,
                Ok((status, _, _)) => {
                    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
                }
            };
            if retryable && attempt < retries {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                continue;
            }
            let (status, _, answer) = answer.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            if status.is_success() {
                return Ok(answer);
            }
            let mut message = serde_json::from_slice::<Value>(&answer)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(String::from))
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned()
                });
            self.client.scrub(&mut message);
            let hint = match status.as_u16() {
                401 => " (check the API key: --api-key-env, --api-key-file)",
                403 => " (the key may not be allowed the Batch API)",
                404 => " (does this endpoint serve the Batch API under /v1?)",
                _ => "",
            };
            bail!("{what}: HTTP {}: {message}{hint}", status.as_u16());
        }
    }

    async fn json(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let body = body.map(|b| ("application/json".to_string(), Bytes::from(b.to_string())));
        let answer = self.call(what, method, path, body).await?;
        serde_json::from_slice(&answer).with_context(|| format!("{what}: the answer is not JSON"))
    }

    /// `POST /files`, multipart: `purpose=batch` and the file.
    async fn upload(&self, name: &str, content: Bytes) -> anyhow::Result<Value> {
        let boundary = format!("llmvolley{:016x}", xxhash_rust::xxh3::xxh3_64(&content));
        let mut body = Vec::with_capacity(content.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/jsonl\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let answer = self
            .call(
                &format!("uploading {name}"),
                Method::POST,
                "/files",
                Some((
                    format!("multipart/form-data; boundary={boundary}"),
                    Bytes::from(body),
                )),
            )
            .await?;
        serde_json::from_slice(&answer).context("the file object is not JSON")
    }
}

pub async fn batch(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let mut conn = Connection::from_args(args.target, args.request, &args.mock_knobs, |k| {
        std::env::var(k).ok()
    })?;
    if conn.stream {
        bail!(
            "--stream: the Batch API answers whole (a line asking to stream fails); drop --stream"
        );
    }
    if !conn.scrape.is_empty() {
        bail!("--scrape watches a live load; a batch runs on the provider's time: drop --scrape");
    }
    // Priced as billed: the Batch API's half price.
    conn.tier = Tier::Batch;
    let (base_url, _mock) = start_target(&conn.target)?;
    let client = Client::new(&conn.client_config(base_url.clone(), 1), Instant::now())?;
    let api = Api {
        client: &client,
        base: &base_url,
    };
    if let Some(dir) = &args.cancel {
        return cancel(&api, dir).await;
    }
    let workload = args.workload.context("give the workload file")?;
    let started = Instant::now();
    let items = read_workload(&workload, &conn)?;
    let (dir, mut state) = if args.resume {
        let dir = args.out.clone().context("--resume needs --out DIR")?;
        let state = Batches::load(&dir)?;
        if state.workload_hash != fingerprint(&workload)? {
            bail!(
                "{} is not the workload {} was made from ({}): --resume goes on with the same file",
                workload.display(),
                dir.display(),
                state.workload
            );
        }
        if state.endpoint != endpoint_of(&base_url) {
            bail!(
                "{}'s batches are at {}, not {}: give that endpoint to --resume",
                dir.display(),
                state.endpoint,
                endpoint_of(&base_url)
            );
        }
        (dir, state)
    } else {
        let dir = run_folder::create(args.out.as_deref(), &workload, Path::new("results"))?;
        let state = plan(&dir, &workload, &base_url, &items, args.max_batch_lines)?;
        (dir, state)
    };
    let _lock = lock(&dir)?;
    if args.resume {
        resubmit_rest(&dir, &mut state)?;
    }
    let say = |line: &str| {
        if !args.quiet {
            eprintln!("{line}");
        }
    };
    let flow = async {
        submit(&api, &dir, &mut state, &say).await?;
        let bar =
            (!args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "batch        [{bar:30}] {pos}/{len} lines done ({percent}%) {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar
            });
        let interrupted = poll(&api, &dir, &mut state, args.poll_every, &say, bar).await?;
        download(&api, &dir, &mut state).await?;
        anyhow::Ok(interrupted)
    }
    .await;
    // Whatever stopped the flow, every line gets its record (not sent, pending ...).
    let summary = join(&dir, &conn, &base_url, &items, &state, started)?;
    let interrupted = match flow {
        Ok(interrupted) => interrupted,
        Err(e) => {
            eprintln!(
                "error: {}; then `llmvolley batch {} --out {} --resume` goes on (nothing is submitted twice)",
                crate::inert::terminal(&format!("{e:#}")),
                workload.display(),
                dir.display()
            );
            return Ok(ExitCode::from(super::EXIT_SETUP));
        }
    };
    crate::export::print_line(&format!("run folder   {}", dir.display()))?;
    super::target::print_summary(&summary, &Default::default())?;
    if interrupted {
        eprintln!(
            "the batches go on at the provider: `llmvolley batch {} --out {} --resume` re-attaches, `llmvolley batch --cancel {}` cancels them",
            workload.display(),
            dir.display(),
            dir.display()
        );
        return Ok(ExitCode::from(super::EXIT_INTERRUPTED));
    }
    Ok(
        if summary.requests.failed > 0 || summary.requests.not_sent > 0 {
            ExitCode::from(super::EXIT_SOME_FAILED)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// Every workload line, in order (an invalid one too: it becomes its record).
fn read_workload(workload: &Path, conn: &Connection) -> anyhow::Result<Vec<WorkItem>> {
    let reader = WorkloadReader::open(workload, conn.default_route())
        .with_context(|| format!("cannot read {}", workload.display()))?;
    let mut items = Vec::new();
    for item in reader {
        items.push(item.with_context(|| format!("cannot read {}", workload.display()))?);
    }
    Ok(items)
}

/// The Batch url of a request (`/v1/responses`).
fn url_of(request: &crate::workload::Request) -> String {
    format!("/v1{}", request.route.path())
}

/// The workload file's size and xxh3 hash.
fn fingerprint(workload: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(workload).with_context(|| format!("cannot read {}", workload.display()))?;
    Ok(format!(
        "{}:{:016x}",
        bytes.len(),
        xxhash_rust::xxh3::xxh3_64(&bytes)
    ))
}

/// The endpoint without credentials or query.
fn endpoint_of(base_url: &Url) -> String {
    format!(
        "{}{}",
        base_url.origin().ascii_serialization(),
        base_url.path()
    )
}

/// A fresh run: the parts' input files in `batch/`, and `batches.json`. Refused before anything
/// is sent: two lines with one custom_id (a batch would fail whole), a line asking to stream
/// (the Batch API answers whole: it would fail a day later).
fn plan(
    dir: &Path,
    workload: &Path,
    base_url: &Url,
    items: &[WorkItem],
    max_lines: usize,
) -> anyhow::Result<Batches> {
    let mut seen: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for item in items {
        if let WorkItem::Send(r) = item {
            if let Some(first) = seen.insert(r.id.as_str(), r.line) {
                bail!(
                    "{}:{}: custom_id {:?} is also line {first}'s: the Batch API needs each line's id unique (give each line its own custom_id)",
                    workload.display(),
                    r.line,
                    r.id
                );
            }
            let streams = serde_json::from_slice::<Value>(&r.body)
                .ok()
                .and_then(|b| b.get("stream").and_then(Value::as_bool))
                == Some(true);
            if streams {
                bail!(
                    "{}:{}: the body asks to stream; the Batch API answers whole and would fail the line: remove \"stream\"",
                    workload.display(),
                    r.line
                );
            }
        }
    }
    let sendable: Vec<&crate::workload::Request> = items
        .iter()
        .filter_map(|i| match i {
            WorkItem::Send(r) => Some(r),
            WorkItem::Invalid(_) => None,
        })
        .collect();
    let lines: Vec<String> = sendable
        .iter()
        .map(|r| batch_api::input_line(&r.id, &url_of(r), &r.body))
        .collect();
    let shape: Vec<(String, usize)> = sendable
        .iter()
        .zip(&lines)
        .map(|(r, l)| (url_of(r), l.len()))
        .collect();
    let shape_ref: Vec<(&str, usize)> = shape.iter().map(|(u, n)| (u.as_str(), *n)).collect();
    let nonce = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        dir.display()
    );
    let mut state = Batches {
        workload: workload.display().to_string(),
        workload_hash: fingerprint(workload)?,
        endpoint: endpoint_of(base_url),
        run_id: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(nonce.as_bytes())),
        max_lines,
        parts: Vec::new(),
    };
    std::fs::create_dir_all(dir.join(PARTS_DIR))?;
    for (url, members) in batch_api::plan(&shape_ref, max_lines, batch_api::MAX_BYTES) {
        let content: String = members.iter().map(|&i| lines[i].as_str()).collect();
        add_part(dir, &mut state, &url, members.len(), content)?;
    }
    state.save(dir)?;
    Ok(state)
}

fn add_part(
    dir: &Path,
    state: &mut Batches,
    url: &str,
    lines: usize,
    content: String,
) -> anyhow::Result<usize> {
    let index = state.parts.len() + 1;
    let file = format!("{PARTS_DIR}/part-{index:03}.jsonl");
    run_folder::write_whole(&dir.join(&file), content.as_bytes())
        .with_context(|| format!("cannot write {}", dir.join(&file).display()))?;
    state.parts.push(Part {
        index,
        url: url.to_string(),
        lines,
        file,
        ..Part::default()
    });
    Ok(index)
}

/// `--resume`: the lines an expired or cancelled batch did not do, as one new part per such part.
fn resubmit_rest(dir: &Path, state: &mut Batches) -> anyhow::Result<()> {
    let done = answered(dir, state)?;
    let ended: Vec<usize> = state
        .parts
        .iter()
        .filter(|p| {
            p.downloaded
                && p.rest_in.is_none()
                && matches!(p.status.as_deref(), Some("expired" | "cancelled"))
        })
        .map(|p| p.index)
        .collect();
    for index in ended {
        let part = &state.parts[index - 1];
        let text = std::fs::read_to_string(dir.join(&part.file))?;
        let rest: String = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| {
                        v["custom_id"]
                            .as_str()
                            .map(|id| !done.by_id.contains_key(id))
                    })
                    .unwrap_or(false)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let url = part.url.clone();
        if rest.is_empty() {
            continue;
        }
        let n = rest.lines().count();
        let new = add_part(dir, state, &url, n, rest)?;
        state.parts[index - 1].rest_in = Some(new);
        state.save(dir)?;
    }
    Ok(())
}

/// Uploads and creates what has not been, each id saved the moment it exists. A part whose
/// upload (or creation) was started but not saved (a crash inside the call) is first looked for
/// by this run's id (its file name, its batch's metadata); the lookup failing stops the run
/// rather than risk a second batch.
async fn submit(
    api: &Api<'_>,
    dir: &Path,
    state: &mut Batches,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let run_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let total = state.parts.len();
    for i in 0..total {
        if state.parts[i].batch_id.is_some() {
            continue;
        }
        let index = state.parts[i].index;
        let name = format!("llmvolley-{}-part-{index:03}.jsonl", state.run_id);
        if state.parts[i].file_id.is_none() {
            let found = if state.parts[i].upload_started {
                find(api, "/files?purpose=batch&limit=10000", |f| {
                    f["filename"].as_str() == Some(name.as_str())
                })
                .await
                .with_context(|| format!("looking for part {index}'s file"))?
            } else {
                None
            };
            let id = match found {
                Some(id) => id,
                None => {
                    // Read only when it is to be sent: a file found again is not read at all.
                    let path = dir.join(&state.parts[i].file);
                    let content = std::fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    state.parts[i].upload_started = true;
                    state.save(dir)?;
                    let file = api.upload(&name, Bytes::from(content)).await?;
                    file["id"]
                        .as_str()
                        .context("the file object has no id")?
                        .to_string()
                }
            };
            state.parts[i].file_id = Some(id);
            state.save(dir)?;
        }
        let file_id = state.parts[i].file_id.clone().unwrap_or_default();
        let found = if state.parts[i].create_started {
            let run_id = state.run_id.clone();
            find(api, "/batches?limit=100", |b| {
                b["metadata"]["llmvolley_run_id"].as_str() == Some(run_id.as_str())
                    && b["metadata"]["llmvolley_part"].as_str() == Some(index.to_string().as_str())
            })
            .await
            .with_context(|| format!("looking for part {index}'s batch"))?
        } else {
            None
        };
        let id = match found {
            Some(id) => id,
            None => {
                state.parts[i].create_started = true;
                state.save(dir)?;
                let part = &state.parts[i];
                let batch = api
                    .json(
                        &format!("creating the batch of part {}", part.index),
                        Method::POST,
                        "/batches",
                        Some(json!({
                            "input_file_id": file_id,
                            "endpoint": part.url,
                            "completion_window": "24h",
                            "metadata": {
                                "llmvolley_run": run_name,
                                "llmvolley_run_id": state.run_id,
                                "llmvolley_part": part.index.to_string(),
                            },
                        })),
                    )
                    .await?;
                batch["id"]
                    .as_str()
                    .context("the batch object has no id")?
                    .to_string()
            }
        };
        state.parts[i].batch_id = Some(id.clone());
        state.parts[i].status = Some("validating".into());
        state.save(dir)?;
        say(&format!(
            "part {}/{total}: {} lines, file {file_id}, batch {id}",
            i + 1,
            state.parts[i].lines
        ));
    }
    Ok(())
}

/// The id of the first object of a list (`/files`, `/batches`, paged by `after`) that `matches`;
/// None when no page has one. Errors: a page could not be read.
async fn find(
    api: &Api<'_>,
    list: &str,
    matches: impl Fn(&Value) -> bool,
) -> anyhow::Result<Option<String>> {
    let mut after: Option<String> = None;
    // At most 100 pages: 10,000 batches, or a million files.
    for _ in 0..100 {
        let path = match &after {
            Some(id) => format!("{list}&after={id}"),
            None => list.to_string(),
        };
        let page = api.json("listing", Method::GET, &path, None).await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if let Some(hit) = data.iter().find(|o| matches(o)) {
            return Ok(hit["id"].as_str().map(String::from));
        }
        match (
            page["has_more"].as_bool(),
            data.last().and_then(|o| o["id"].as_str()),
        ) {
            (Some(true), Some(last)) => after = Some(last.to_string()),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// One `llmvolley batch` per run folder at a time: two would submit the same parts.
fn lock(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join("batches.json.lock");
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns (the File lives as long as the lock).
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        bail!(
            "another llmvolley batch is working in {}: wait for it, or stop it first",
            dir.display()
        );
    }
    Ok(file)
}

/// Asks every unended batch how far it got, every `every`, until all ended; true when an
/// interrupt stopped the waiting (the batches go on).
async fn poll(
    api: &Api<'_>,
    dir: &Path,
    state: &mut Batches,
    every: Duration,
    say: &(dyn Fn(&str) + Sync),
    bar: Option<indicatif::ProgressBar>,
) -> anyhow::Result<bool> {
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        for part in state
            .parts
            .iter_mut()
            .filter(|p| !p.ended() && p.batch_id.is_some())
        {
            let id = part.batch_id.clone().unwrap_or_default();
            let batch = api
                .json(
                    &format!("asking batch {id}"),
                    Method::GET,
                    &format!("/batches/{id}"),
                    None,
                )
                .await?;
            if let Some(status) = batch["status"].as_str() {
                part.status = Some(status.to_ascii_lowercase());
            }
            part.request_counts = Some(batch["request_counts"].clone());
            part.output_file_id = batch["output_file_id"].as_str().map(String::from);
            part.error_file_id = batch["error_file_id"].as_str().map(String::from);
            if !batch["errors"].is_null() {
                part.errors = Some(batch["errors"].clone());
            }
        }
        state.save(dir)?;
        let (mut done, mut total) = (0u64, 0u64);
        for p in &state.parts {
            let counts = p.request_counts.as_ref();
            let n = |k: &str| counts.and_then(|c| c[k].as_u64()).unwrap_or(0);
            done += n("completed") + n("failed");
            total += n("total").max(p.lines as u64);
        }
        let statuses: Vec<String> = state
            .parts
            .iter()
            .map(|p| format!("{}:{}", p.index, p.status.as_deref().unwrap_or("-")))
            .collect();
        match &bar {
            // A terminal: one bar fed by the batches' request_counts.
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(format!("parts {}", statuses.join(" ")));
            }
            None => say(&format!(
                "batch        {done}/{total} lines done ({:.0}%); parts {}",
                if total > 0 {
                    100.0 * done as f64 / total as f64
                } else {
                    0.0
                },
                statuses.join(" ")
            )),
        }
        if state.parts.iter().all(Part::ended) {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            return Ok(false);
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = &mut interrupt => return Ok(true),
        }
    }
}

/// Each ended part's output and error files, into the run folder.
async fn download(api: &Api<'_>, dir: &Path, state: &mut Batches) -> anyhow::Result<()> {
    for i in 0..state.parts.len() {
        let part = &state.parts[i];
        if part.downloaded || !part.ended() {
            continue;
        }
        let done = part
            .request_counts
            .as_ref()
            .and_then(|c| c["completed"].as_u64())
            .unwrap_or(0);
        if done > 0 && part.output_file_id.is_none() {
            // Answers without their file yet: `--resume` asks again rather than lose them.
            eprintln!(
                "warning: part {}'s batch answered {done} lines but names no output file yet; `--resume` collects it later",
                part.index
            );
            continue;
        }
        for (file_id, path) in [
            (part.output_file_id.clone(), part.output_path()),
            (part.error_file_id.clone(), part.errors_path()),
        ] {
            let content = match file_id {
                Some(id) => {
                    api.call(
                        &format!("downloading file {id}"),
                        Method::GET,
                        &format!("/files/{id}/content"),
                        None,
                    )
                    .await?
                }
                None => Bytes::new(),
            };
            run_folder::write_whole(&dir.join(&path), &content)
                .with_context(|| format!("cannot write {}", dir.join(&path).display()))?;
        }
        state.parts[i].downloaded = true;
        state.save(dir)?;
    }
    Ok(())
}

/// Every downloaded output and error file read, by custom_id.
fn answered(dir: &Path, state: &Batches) -> anyhow::Result<Results> {
    let mut results = Results::default();
    for part in state.parts.iter().filter(|p| p.downloaded) {
        for (path, from_errors) in [(part.output_path(), false), (part.errors_path(), true)] {
            // A file that cannot be read would make its answered lines look undone.
            let text = std::fs::read_to_string(dir.join(&path))
                .with_context(|| format!("cannot read {}", dir.join(&path).display()))?;
            results.read(&text, from_errors, &|_| true);
        }
    }
    Ok(results)
}

/// One record per workload line, the summary, and the cost at the batch tier beside live's.
fn join(
    dir: &Path,
    conn: &Connection,
    base_url: &Url,
    items: &[WorkItem],
    state: &Batches,
    started: Instant,
) -> anyhow::Result<Summary> {
    let results = answered(dir, state)?;
    // Which part each id went to last (a resubmitted line's newest part decides its ending).
    let mut part_of: BTreeMap<String, usize> = BTreeMap::new();
    for part in &state.parts {
        let text = std::fs::read_to_string(dir.join(&part.file)).unwrap_or_default();
        for line in text.lines() {
            if let Some(id) = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["custom_id"].as_str().map(String::from))
            {
                part_of.insert(id, part.index);
            }
        }
    }
    let known: std::collections::HashSet<&str> = items.iter().map(WorkItem::id).collect();
    let unknown = results.unknown.len()
        + results
            .by_id
            .keys()
            .filter(|id| !known.contains(id.as_str()))
            .count();
    // The records are derived from the downloaded files, so a re-attached run writes them anew.
    for file in [
        run_folder::RECORDS_JSONL,
        run_folder::RECORDS_CSV,
        run_folder::TIMESERIES_CSV,
    ] {
        match std::fs::remove_file(dir.join(file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::anyhow!(
                    "cannot replace {}: {e}",
                    dir.join(file).display()
                ));
            }
            _ => {}
        }
    }
    let mut sinks = create_record_files(dir)?;
    let mut stats = RunStats::default();
    let mut pricer = Pricer::new(conn.prices.clone(), Tier::Batch, true);
    let mut live = Pricer::new(conn.prices.clone(), Tier::Standard, false);
    let secrets = conn.secrets(base_url);
    let mut live_usd = 0.0;
    for item in items {
        let mut record = match item {
            WorkItem::Invalid(line) => {
                let mut r =
                    crate::record::Record::empty(line.id.clone(), line.line, Status::InvalidInput);
                r.fail(Status::InvalidInput, "invalid_input", line.message.clone());
                r
            }
            WorkItem::Send(request) => {
                let part = part_of
                    .get(&request.id)
                    .and_then(|i| state.parts.get(i - 1));
                let ending = match part {
                    Some(p) if p.batch_id.is_none() => "not created",
                    Some(p) => p.status.as_deref().unwrap_or("pending"),
                    None => "not created",
                };
                let why = part
                    .and_then(|p| p.errors.as_ref())
                    .and_then(|e| e["data"][0]["message"].as_str());
                let mut r = batch_api::record_of(
                    &request.id,
                    request.line,
                    results.by_id.get(&request.id),
                    ending,
                    why,
                );
                // A batch still running, or ended with its files not yet downloaded.
                let waiting =
                    part.is_some_and(|p| p.batch_id.is_some() && (!p.ended() || !p.downloaded));
                if waiting && r.status != Status::Ok {
                    r.fail(
                        Status::NotSent,
                        "batch_pending",
                        "its batch is still running; `llmvolley batch --resume` re-attaches",
                    );
                }
                r
            }
        };
        secrets.scrub_record(&mut record);
        // Billed at the batch tier whatever tier the body names (a batch's answers say
        // "default"); the live figure is the standard tier's.
        let tier = record.service_tier.take();
        let mut at_live = record.clone();
        live.price(&mut at_live);
        live_usd += at_live.cost_usd.unwrap_or(0.0);
        pricer.price(&mut record);
        record.service_tier = tier;
        for sink in sinks.iter_mut() {
            sink.write(&record)?;
        }
        stats.add(&record);
    }
    for sink in sinks.iter_mut() {
        sink.flush()?;
    }
    std::fs::create_dir_all(dir.join(HISTOGRAMS_DIR))?;
    stats.save_histograms(&dir.join(HISTOGRAMS_DIR))?;
    let mut summary = Summary::from_stats(
        &stats,
        started.elapsed().as_secs_f64(),
        pricer.unpriced_models(),
    );
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for part in &state.parts {
        *by_status
            .entry(part.status.clone().unwrap_or_else(|| "not created".into()))
            .or_default() += 1;
    }
    summary.batch = Some(ViaBatch {
        parts: state.parts.len(),
        by_status,
        cost_usd: summary.cost.total_usd,
        live_cost_usd: summary
            .cost
            .total_usd
            .map(|_| (live_usd * 1e9).round() / 1e9),
        lines_twice: results.twice.len() as u64,
        lines_unknown: unknown as u64,
        unreadable_lines: results.unreadable as u64,
    });
    summary.warnings.push(
        "Batch API: no per-request latency, TTFT or rate (answers arrive as files); figures are counts, tokens and cost".into(),
    );
    for part in state
        .parts
        .iter()
        .filter(|p| p.status.as_deref() == Some("failed"))
    {
        let messages: Vec<String> = part
            .errors
            .as_ref()
            .and_then(|e| e["data"].as_array())
            .map(|data| {
                data.iter()
                    .take(3)
                    .map(|e| e["message"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default();
        summary.warnings.push(format!(
            "part {} failed validation, nothing of it answered: {}",
            part.index,
            messages.join("; ")
        ));
    }
    let answered_lines = summary.requests.ok + summary.requests.failed;
    if answered_lines > 0 && summary.requests.ok == 0 {
        summary.warnings.push(format!(
            "every one of the {answered_lines} lines the batches answered failed: a batch \"completed\" with failed lines is not a success"
        ));
    }
    if !results.twice.is_empty() {
        summary.warnings.push(format!(
            "{} custom_ids had more than one output or error line (the output line was kept): {}",
            results.twice.len(),
            results
                .twice
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if unknown > 0 {
        summary.warnings.push(format!(
            "{unknown} output or error lines name a custom_id no workload line has"
        ));
    }
    crate::export::Exports::new()
        .to(
            crate::export::Json,
            crate::export::Destination::File(dir.join(SUMMARY_JSON)),
        )
        .write(&summary)?;
    Ok(summary)
}

/// `--cancel DIR`: every batch of the folder that has not ended.
async fn cancel(api: &Api<'_>, dir: &Path) -> anyhow::Result<ExitCode> {
    // No lock: a running client of the folder polls on and collects what the batches did.
    let mut state = Batches::load(dir)?;
    let (mut cancelled, mut refused) = (0, 0);
    for part in state.parts.iter_mut().filter(|p| !p.ended()) {
        let Some(id) = part.batch_id.clone() else {
            continue;
        };
        // One refusal (a batch that ended meanwhile) stops no other part's cancel.
        match api
            .json(
                &format!("cancelling batch {id}"),
                Method::POST,
                &format!("/batches/{id}/cancel"),
                None,
            )
            .await
        {
            Ok(batch) => {
                if let Some(status) = batch["status"].as_str() {
                    part.status = Some(status.to_ascii_lowercase());
                }
                println!(
                    "part {}: batch {id} {}",
                    part.index,
                    part.status.as_deref().unwrap_or("?")
                );
                cancelled += 1;
            }
            Err(e) => {
                refused += 1;
                eprintln!("part {}: {e:#}", part.index);
            }
        }
    }
    state.save(dir)?;
    println!(
        "{cancelled} batches cancelled; `--resume` on this folder collects what they did (and submits the lines they did not do again)"
    );
    Ok(if refused > 0 {
        ExitCode::from(super::EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
