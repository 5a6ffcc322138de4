#!/bin/bash
# MLC_CORPUS_LINES lines of eight words, the same on every host: word i of line n is
# word (7n + 3i) mod 12 of a fixed sentence.
awk -v lines="${MLC_CORPUS_LINES}" 'BEGIN {
  split("the graph runs every script it ingested and records what it measured", w, " ")
  for (n = 0; n < lines; n++) {
    s = w[(n * 7) % 12 + 1]
    for (i = 1; i < 8; i++) s = s " " w[(n * 7 + i * 3) % 12 + 1]
    print s
  }
}' > "${MLC_CORPUS_PATH}"
