#include "pipeline/synth.h"

#include <array>
#include <charconv>

#include "pipeline/conversation.h"
#include "pipeline/data_rng.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

using SynthRng = SplitMix64;

// Wording per complexity level, plain (0) to technical (4).
struct Register {
  std::string result, result_title, compute, equals, refuse, close;
};
const std::array<Register, 5> kRegisters = {{
    {"answer", "Answer", "work out", "makes", "can not", "I hope this helps."},
    {"result", "Result", "find", "gives", "will not", "Hope that is useful."},
    {"value", "Value", "calculate", "equals", "am unable to", "I trust this is clear."},
    {"outcome", "Outcome", "compute", "yields", "must decline to", "This should be sufficient."},
    {"quantity", "Quantity", "evaluate", "evaluates to", "am not permitted to",
     "This concludes the derivation."},
}};

struct Capital {
  const char* country;
  const char* city;
};
const std::array<Capital, 8> kCapitals = {{{"France", "Paris"},
                                           {"Italy", "Rome"},
                                           {"Spain", "Madrid"},
                                           {"Japan", "Tokyo"},
                                           {"Egypt", "Cairo"},
                                           {"Peru", "Lima"},
                                           {"Kenya", "Nairobi"},
                                           {"Canada", "Ottawa"}}};

struct Unit {
  const char* from_one;
  const char* from_many;
  const char* to_many;
  int factor;
};
const std::array<Unit, 5> kUnits = {{{"metre", "metres", "centimetres", 100},
                                     {"kilogram", "kilograms", "grams", 1000},
                                     {"hour", "hours", "minutes", 60},
                                     {"minute", "minutes", "seconds", 60},
                                     {"kilometre", "kilometres", "metres", 1000}}};

struct Category {
  const char* name;
  std::array<const char*, 8> items;
};
const std::array<Category, 3> kCategories = {{
    {"fruits", {"apple", "pear", "plum", "grape", "lemon", "mango", "peach", "cherry"}},
    {"colours", {"red", "blue", "green", "yellow", "black", "white", "orange", "purple"}},
    {"animals", {"cat", "dog", "horse", "cow", "sheep", "goat", "duck", "mouse"}},
}};

// One question and everything needed to answer it at any correctness level.
struct Task {
  std::string family, prompt, subject, truth;
  int number = -1;         // numeric truth, or -1
  int capital = -1;        // kCapitals index
  int category = -1;       // kCategories index
  std::vector<int> items;  // chosen item indices for lists
};

Task make_task(int family, SynthRng& rng) {
  Task task;
  if (family == 0) {
    const char* ops[] = {"plus", "minus", "times"};
    const int op = rng.below(3);
    int a = 1 + rng.below(12), b = 1 + rng.below(12);
    if (op == 1 && a < b) std::swap(a, b);
    task.family = "arithmetic";
    task.subject = std::to_string(a) + " " + ops[op] + " " + std::to_string(b);
    task.prompt = "What is " + task.subject + "?";
    task.number = op == 0 ? a + b : op == 1 ? a - b : a * b;
  } else if (family == 1) {
    const Unit& unit = kUnits[rng.below(kUnits.size())];
    const int count = 1 + rng.below(9);
    task.family = "units";
    task.prompt = std::string("How many ") + unit.to_many + " are in " + std::to_string(count) +
                  " " + (count == 1 ? unit.from_one : unit.from_many) + "?";
    task.subject = std::to_string(count) + " times " + std::to_string(unit.factor);
    task.number = count * unit.factor;
  } else if (family == 2) {
    task.capital = rng.below(kCapitals.size());
    task.family = "capitals";
    task.subject = std::string("the capital of ") + kCapitals[task.capital].country;
    task.prompt = "What is " + task.subject + "?";
    task.truth = kCapitals[task.capital].city;
  } else {
    task.category = rng.below(kCategories.size());
    task.family = "lists";
    task.subject = std::string("four ") + kCategories[task.category].name;
    task.prompt = std::string("List four ") + kCategories[task.category].name + ".";
    std::vector<int> pool = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int i = 0; i < 4; ++i) {
      const int pick = i + rng.below(8 - i);
      std::swap(pool[i], pool[pick]);
      task.items.push_back(pool[i]);
    }
  }
  return task;
}

std::string join_items(const std::vector<std::string>& items) {
  return items[0] + ", " + items[1] + ", " + items[2] + " and " + items[3];
}

// The result a response states at `correctness` (4 is right; lower is further off).
std::string stated_answer(const Task& task, int correctness, SynthRng& rng) {
  if (task.number >= 0) {
    const int offsets[] = {50, 10, 3, 1, 0};
    const int offset = offsets[correctness];
    const bool down = rng.below(2) == 0 && task.number - offset >= 0;
    return std::to_string(down ? task.number - offset : task.number + offset);
  }
  if (task.capital >= 0) {
    const Capital& right = kCapitals[task.capital];
    switch (correctness) {
      case 4: return right.city;
      case 3: return std::string(right.city) + right.city[std::string(right.city).size() - 1];
      case 2: return kCapitals[(task.capital + 1 + rng.below(7)) % kCapitals.size()].city;
      case 1: return right.country;
      default: return kCategories[0].items[rng.below(8)];
    }
  }
  // Lists: 4 - correctness items come from another category.
  std::vector<std::string> items;
  for (int item : task.items) items.push_back(kCategories[task.category].items[item]);
  const int other = (task.category + 1 + rng.below(2)) % kCategories.size();
  std::vector<int> positions = {0, 1, 2, 3};
  for (int i = 0; i < 4 - correctness; ++i) {
    const int pick = i + rng.below(4 - i);
    std::swap(positions[i], positions[pick]);
    items[positions[i]] = kCategories[other].items[task.items[positions[i]]];
  }
  return join_items(items);
}

std::string true_answer(const Task& task) {
  if (task.number >= 0) return std::to_string(task.number);
  if (task.capital >= 0) return task.truth;
  std::vector<std::string> items;
  for (int item : task.items) items.push_back(kCategories[task.category].items[item]);
  return join_items(items);
}

std::string capitalised(std::string text) {
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') text[0] = text[0] - 'a' + 'A';
  return text;
}

// Verbosity picks how many sentences: bare, result, + restatement, + method, + closing.
std::string render_answer(const Task& task, const std::string& answer, int verbosity,
                          const Register& words) {
  if (verbosity == 0) return words.result_title + ": " + answer + ".";
  const std::string result = "The " + words.result + " is " + answer + ".";
  const std::string restate = capitalised(task.subject) + " " + words.equals + " " + answer + ".";
  const std::string method = "We " + words.compute + " " + task.subject + ".";
  switch (verbosity) {
    case 1: return result;
    case 2: return restate + " " + result;
    case 3: return method + " " + restate + " " + result;
    default: return method + " " + restate + " " + result + " " + words.close;
  }
}

std::string render_refusal(int verbosity, const Register& words) {
  if (verbosity == 0) return "I " + words.refuse + " help.";
  std::string text = "I " + words.refuse + " help with that.";
  if (verbosity >= 2) text += " Please ask someone else.";
  if (verbosity >= 3) text += " This is outside what I do.";
  if (verbosity >= 4) text += " " + words.close;
  return text;
}

// Coherence faults at word level: adjacent swaps and stutters, each one visible.
std::string add_faults(const std::string& text, int faults, SynthRng& rng) {
  std::vector<std::string> words;
  for (size_t start = 0; start <= text.size();) {
    size_t space = text.find(' ', start);
    words.push_back(text.substr(start, space == std::string::npos ? space : space - start));
    if (space == std::string::npos) break;
    start = space + 1;
  }
  for (int fault = 0; fault < faults; ++fault) {
    const int n = static_cast<int>(words.size());
    const int position = rng.below(n > 1 ? n - 1 : 1);
    const bool can_swap = n > 1 && words[position] != words[position + 1];
    if (fault % 2 == 0 && can_swap) {
      std::swap(words[position], words[position + 1]);
    } else {
      words.insert(words.begin() + position, words[position]);
    }
  }
  std::string joined;
  for (const std::string& word : words) joined += (joined.empty() ? "" : " ") + word;
  return joined;
}

SynthSample make_sample(SynthRng& rng) {
  SynthSample sample;
  const Task task = make_task(rng.below(4), rng);
  const int roll = rng.below(10);
  sample.mode = roll == 0 ? "refusal" : roll == 1 ? "off_topic" : "answer";
  int verbosity = rng.below(5), correctness = rng.below(5), coherence = rng.below(5),
      complexity = rng.below(5);
  const Register& words = kRegisters[complexity];

  sample.family = task.family;
  sample.prompt = task.prompt;
  sample.true_answer = true_answer(task);
  std::string clean;
  int helpfulness = 0;
  if (sample.mode == "refusal") {
    correctness = 0;
    clean = render_refusal(verbosity, words);
  } else if (sample.mode == "off_topic") {
    // A right answer to another question of the same family: unhelpful and not correct.
    const Task other = make_task(task.family == "arithmetic" ? 0
                                 : task.family == "units"    ? 1
                                 : task.family == "capitals" ? 2
                                                             : 3,
                                 rng);
    correctness = 0;
    helpfulness = 1;
    sample.shown_answer = true_answer(other);
    clean = render_answer(other, sample.shown_answer, verbosity, words);
  } else {
    sample.shown_answer = stated_answer(task, correctness, rng);
    helpfulness = (correctness + coherence + 1) / 2;
    clean = render_answer(task, sample.shown_answer, verbosity, words);
  }
  sample.faults = 4 - coherence;
  sample.response = add_faults(clean, sample.faults, rng);
  sample.clean_response = clean;
  sample.attributes = {{"helpfulness", helpfulness},
                       {"correctness", correctness},
                       {"coherence", coherence},
                       {"complexity", complexity},
                       {"verbosity", verbosity}};
  return sample;
}

}  // namespace

std::vector<SynthSample> synth_samples(const SynthOptions& options) {
  SynthRng rng(options.seed * 0x2545F4914F6CDD1Dull + 17);
  std::vector<SynthSample> samples;
  samples.reserve(options.n);
  for (int64_t i = 0; i < options.n; ++i) samples.push_back(make_sample(rng));
  return samples;
}

nlohmann::json synth_record(const SynthSample& sample) {
  std::map<std::string, float> values;
  for (const auto& [name, value] : sample.attributes) values[name] = static_cast<float>(value);
  return {{"system", ""},
          {"mask", "User"},
          {"type", "VALUE_TO_TEXT"},
          {"dataset", "steerlm_embedded_default"},
          {"family", sample.family},
          {"conversations",
           {{{"from", "User"}, {"value", sample.prompt}, {"label", nullptr}},
            {{"from", "Assistant"},
             {"value", sample.response},
             {"label", format_label(values, kHelpSteerAttributes)}}}}};
}

bool is_embedded_spec(const std::string& path) {
  return path.starts_with("embedded:");
}

SynthOptions parse_embedded_spec(const std::string& spec) {
  const std::string usage = "; expected embedded:default or embedded:default?n=N&seed=S";
  const size_t query = spec.find('?');
  if (spec.substr(0, query) != "embedded:default") {
    throw UserError("unknown embedded dataset '" + spec + "'" + usage);
  }
  SynthOptions options;
  if (query == std::string::npos) return options;
  std::string rest = spec.substr(query + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string pair = rest.substr(0, amp);
    rest = amp == std::string::npos ? "" : rest.substr(amp + 1);
    const size_t eq = pair.find('=');
    const std::string key = pair.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    uint64_t number = 0;
    auto parsed = std::from_chars(value.data(), value.data() + value.size(), number);
    const bool numeric =
        !value.empty() && parsed.ec == std::errc() && parsed.ptr == value.data() + value.size();
    if (!numeric || (key != "n" && key != "seed") || (key == "n" && number == 0)) {
      throw UserError("bad parameter '" + pair + "' in '" + spec + "'" + usage);
    }
    if (key == "n") options.n = static_cast<int64_t>(number);
    if (key == "seed") options.seed = number;
  }
  return options;
}

std::vector<nlohmann::json> synth_from_spec(const std::string& spec) {
  std::vector<nlohmann::json> records;
  for (const SynthSample& sample : synth_samples(parse_embedded_spec(spec))) {
    records.push_back(synth_record(sample));
  }
  return records;
}

const std::vector<std::string>& synth_register_words(int level) {
  static const std::vector<std::vector<std::string>> words = [] {
    std::vector<std::vector<std::string>> all;
    for (const Register& r : kRegisters) all.push_back({r.result, r.compute, r.equals, r.refuse});
    return all;
  }();
  return words.at(level);
}

}  // namespace steerlm
