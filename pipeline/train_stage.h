// The training stages, train-attr (attribute model) and sft (attribute-conditioned SFT), as one
// job: data -> model -> training loop -> outputs (DESIGN §4 "Output directory of every job").
//
//   MpiSession mpi;
//   run_training_stage(TrainingTask::kSft, config, where, mpi);
//
// Writes under output_dir: logs/, metrics.jsonl, checkpoint/ (+ checkpoints/step_N/),
// data/skipped_records.jsonl, eval.json (sft), and DONE last.
#pragma once

#include "configs/steerlm.pb.h"
#include "runtime/config.h"

namespace steerlm {

class MpiSession;

enum class TrainingTask {
  kAttributeModel,  // steerlm train-attr
  kSft,             // steerlm sft
};

const char* training_task_command(TrainingTask task);

void run_training_stage(TrainingTask task, const config::StageConfig& config,
                        const FieldLocations& where, MpiSession& mpi);

}  // namespace steerlm
