#!/usr/bin/env bash
# Does gymnasium 1.3.0 (what ddpgx installs, for gymnax 1.0.1) change any result against 1.4.0? Four short Python-loop
# runs under each (1.4.0 from a --target directory shadowing the venv's), their final parameters compared bytewise.
#   bash benchmarks/gymnasium_versions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=.venv/bin/ddpgx
OUT=benchmarks/out/gymnasium_versions
rm -rf "$OUT" && mkdir -p "$OUT"
.venv/bin/pip install -q --no-deps --target "$OUT/gym14" gymnasium==1.4.0
flags="--no-progress --no-plot --no-tensorboard"
for v in 13 14; do
  if [ $v = 14 ]; then export PYTHONPATH="$PWD/$OUT/gym14"; else unset PYTHONPATH; fi
  $B train --env Pendulum-v1 --total-steps 3000 $flags --run-dir $OUT/$v/pend > /dev/null
  $B train --env Pendulum-v1 --num-envs 4 --total-steps 2000 $flags --run-dir $OUT/$v/pend4 > /dev/null
  $B train --env Hopper-v5 --total-steps 2000 --learning-starts 1000 --actor-hidden 64 64 --critic-hidden 64 64 \
    --eval-every 2000 --eval-episodes 2 $flags --run-dir $OUT/$v/hop > /dev/null
  $B train --env FetchReach-v4 --preset her --total-steps 2000 --eval-every 1000 --eval-episodes 5 $flags \
    --run-dir $OUT/$v/reach > /dev/null
  echo "gymnasium $(python3 -c "import json;print(json.load(open('$OUT/$v/pend/config.json'))['versions']['gymnasium'])")"
done
for r in pend pend4 hop reach; do
  cmp -s $OUT/13/$r/final.msgpack $OUT/14/$r/final.msgpack && echo "$r: bitwise the same" || echo "$r: DIFFERENT"
done
