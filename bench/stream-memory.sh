#!/usr/bin/env bash
# stream-memory.sh: what one long stream costs its worker's memory. Starts
# `make run` (SmolLM2 on the CPU, port 8080), streams one chat of N choices
# x T tokens (ignore_eos, greedy) with curl, samples the workers' VmRSS
# every 0.2 s while it runs and prints the peak against the RSS before,
# then stops nginx. A worker keeps a stream's events in recycled buffers,
# so the growth should not scale with the tokens.
#
# usage: bash bench/stream-memory.sh [N [T]]      (defaults 4 and 1000)
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:-4}
T=${2:-1000}
URL=http://127.0.0.1:8080

make run > /tmp/stream-memory-run.log 2>&1 &
for _ in $(seq 1 180); do
    curl -sf "$URL/health" > /dev/null && break
    sleep 1
done

workers=$(pgrep -f "nginx: worker process" | tr '\n' ' ')
before=0
for w in $workers; do
    r=$(awk '/VmRSS/{print $2}' "/proc/$w/status")
    [ "$r" -gt "$before" ] && before=$r
done

curl -sN "$URL/v1/chat/completions" -o /tmp/stream-memory.out \
    -d "{\"model\": \"base\", \"stream\": true, \"n\": $N,
         \"max_tokens\": $T, \"ignore_eos\": true, \"temperature\": 0,
         \"messages\": [{\"role\": \"user\",
                         \"content\": \"Tell me a long story.\"}]}" &
cpid=$!
peak=0
while kill -0 $cpid 2> /dev/null; do
    for w in $workers; do
        r=$(awk '/VmRSS/{print $2}' "/proc/$w/status")
        [ "$r" -gt "$peak" ] && peak=$r
    done
    sleep 0.2
done

events=$(grep -c '^data:' /tmp/stream-memory.out || true)
echo "events $events; worker RSS before $before kB, peak $peak kB:" \
     "$((peak - before)) kB more, $(( (peak - before) * 1024 / events ))" \
     "bytes an event"

kill -QUIT "$(cat run/logs/nginx.pid)"
wait
