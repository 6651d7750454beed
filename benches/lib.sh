# Sourced by the bench scripts (run from the repository's root, after a release build).
# start_mock OUT [FLAGS...]: starts `llmvolley mock --port 0 FLAGS` in a process of its own, its
# output in OUT; sets mock_pid and endpoint (http://127.0.0.1:PORT/v1) once it listens.
start_mock() {
    local out=$1
    shift
    target/release/llmvolley mock --port 0 "$@" > "$out" 2>&1 &
    mock_pid=$!
    for _ in $(seq 50); do
        grep -q listening "$out" 2>/dev/null && break
        sleep 0.1
    done
    endpoint=$(grep -o 'http://[^ ]*' "$out")
}
