// What `pipeline run` prints at its end and `pipeline status` prints any time: one row per job
// (state, ranks, duration, key metrics from its metrics.jsonl and eval.json), then the
// steerability table of each eval-steer job.
#pragma once

#include <string>

#include "launch/pipeline_spec.h"

namespace steerlm {

// "41.2 s", "3 min 05 s".
std::string format_seconds(double seconds);

// The table, from the state file and the DONE markers (DONE wins over a stale state).
std::string pipeline_summary(const PipelineSpec& spec);

}  // namespace steerlm
