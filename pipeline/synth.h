// The embedded default dataset (issue 4 item 7): small attribute-labelled conversations that a
// tiny model trained from scratch on a CPU can learn to steer in minutes.
//
// Four task families (arithmetic, unit conversion, capital lookup, list-making). For every record
// verbosity, correctness, coherence and complexity are drawn independently and uniformly from
// 0..4 and the response is rendered from them by construction:
//   verbosity   number of sentences: a bare "Answer: 12." (0) ... method, restatement, result and a
//               closing line (4);
//   correctness how wrong the stated result is (4: right; numbers off by 1, 3, 10, 50; a misspelt,
//               another, the country's own or an unrelated name; 0..4 wrong list items);
//   coherence   4 - coherence word-level faults (adjacent swaps and stutters);
//   complexity  the register of the wording: one of five word sets, plain to technical.
// helpfulness is derived: refusals score 0, off-topic answers 1, answers
// (correctness + coherence + 1) / 2. Refusals and off-topic answers have correctness 0.
//
// Output: NeMo-Aligner SteerLM JSONL with HelpSteer attribute names and an empty system prompt.
// Deterministic for (n, seed) on every platform (own PRNG, no std distributions).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace steerlm {

struct SynthOptions {
  int64_t n = 2000;
  uint64_t seed = 1;
};

// One generated record and the plan it was rendered from.
struct SynthSample {
  std::string family;  // "arithmetic", "units", "capitals", "lists"
  std::string mode;    // "answer", "refusal", "off_topic"
  std::string prompt;
  std::string response;
  std::string clean_response;             // the response before coherence faults
  std::string true_answer;                // the right result for the prompt
  std::string shown_answer;               // the result the response states ("" for refusals)
  int faults = 0;                         // coherence faults applied (4 - coherence)
  std::map<std::string, int> attributes;  // the five HelpSteer attributes
};

std::vector<SynthSample> synth_samples(const SynthOptions& options);
// The SteerLM JSONL record of a sample.
nlohmann::json synth_record(const SynthSample& sample);

// "embedded:..." paths name the embedded dataset instead of a file.
bool is_embedded_spec(const std::string& path);
// Parses "embedded:default[?n=N&seed=S]"; UserError on anything else.
SynthOptions parse_embedded_spec(const std::string& spec);
std::vector<nlohmann::json> synth_from_spec(const std::string& spec);

// The register words of complexity level `level` (0..4), for tests and docs.
const std::vector<std::string>& synth_register_words(int level);

}  // namespace steerlm
