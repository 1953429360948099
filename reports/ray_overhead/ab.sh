#!/bin/bash
# Ray vs local, cpu preset, Table 2 only (35 runs: 7 sets x 5 seeds), warm embedding cache, fresh run records,
# nothing else started on the machine meanwhile. Order: local, ray, local, ray.
cd /work/main
for round in 1 2; do
for b in local ray; do
  d=/tmp/gridm/ab-$b-$round; rm -rf $d; mkdir -p $d
  echo "$b.$round start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/gridm/ab.log
  s=$(date +%s.%N)
  if [ $b = local ]; then extra="--jobs 2"; else extra="--backend ray --cpus-per-run 1"; fi
  pgkd reproduce --preset cpu --only table2 --out $d/reports --runs $d/runs $extra > $d.out 2>&1
  rc=$?; e=$(date +%s.%N)
  echo "$b.$round rc=$rc wall=$(python -c "print(round($e-$s,1))") end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/gridm/ab.log
done; done
