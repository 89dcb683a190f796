// steerlm train-attr and steerlm sft: validate, start the stage, run the training job.
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/stage.h"
#include "parallel/mpi_session.h"
#include "pipeline/train_stage.h"

namespace steerlm {
namespace {

void add_training_command(CLI::App& app, TrainingTask task, const std::string& help) {
  const std::string name = training_task_command(task);
  CLI::App* command = app.add_subcommand(name, help);
  auto options = add_stage_options(command);
  command->callback([options, name, task] {
    MpiSession& mpi = process_mpi_session();
    FieldLocations where;
    config::StageConfig config = load_validated_config(*options, {}, mpi.world_size(), &where);
    begin_stage(name, config, mpi);
    run_training_stage(task, config, where, mpi);
  });
}

}  // namespace

void register_train_commands(CLI::App& app) {
  add_training_command(app, TrainingTask::kAttributeModel,
                       "train the attribute prediction model (Llama trunk + attribute head)");
  add_training_command(app, TrainingTask::kSft,
                       "attribute-conditioned supervised fine-tuning (ACSFT)");
}

}  // namespace steerlm
