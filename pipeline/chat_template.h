// NeMo-Aligner's SteerLM chat template and ACSFT loss masks, byte for byte (DESIGN §1, §2):
//
//   <extra_id_0>System\n{system}\n
//   <extra_id_1>User\n{user turn}\n
//   <extra_id_1>Assistant\n<extra_id_2>{label}\n{assistant turn}\n
//   ... <extra_id_1>            (only when the conversation ends on an assistant turn)
//
// Trained (ACSFT loss): each assistant response and its trailing "\n"; the leading <extra_id_1>
// of every user turn after the first; the final <extra_id_1>. Everything else is context.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "pipeline/conversation.h"

namespace steerlm {

inline constexpr const char* kSystemMarker = "<extra_id_0>";
inline constexpr const char* kTurnMarker = "<extra_id_1>";
inline constexpr const char* kLabelMarker = "<extra_id_2>";

// What rendering needs from config::ChatTemplate, with the attribute set resolved.
struct TemplateOptions {
  std::vector<std::string> attributes;  // label order
  std::string default_system;           // for formats without a system field
};

// chat_template's options; `attributes` is used when chat_template.attributes is empty.
TemplateOptions make_template_options(const config::ChatTemplate& chat_template,
                                      const std::vector<std::string>& attributes);

// A byte range [begin, end) of a rendered string.
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
  bool operator==(const TextSpan& other) const = default;
};

// A piece of rendered text and whether it is trained; concatenated, the pieces give the text.
struct Segment {
  std::string text;
  bool trained = false;
};

struct RenderedText {
  std::string text;
  std::vector<TextSpan> trained;  // sorted, disjoint, non-empty, never adjacent
  std::vector<Segment> segments() const;
  // Whether byte `offset` lies in a trained span.
  bool is_trained(size_t offset) const;
};

// The ACSFT form of a whole conversation, with its trained spans.
RenderedText render_acsft(const Conversation& conversation, const TemplateOptions& options);

// The attribute-model input for the assistant turn `turn_index`: the conversation up to and
// including that turn, labels left out, then <extra_id_2>. Ends "...{response}\n<extra_id_2>".
std::string render_attribute_input(const Conversation& conversation, size_t turn_index,
                                   const TemplateOptions& options);

// A generation prompt: `conversation` (ending on a user turn) and then the assistant header with
// the requested label, "<extra_id_1>Assistant\n<extra_id_2>{label}\n".
std::string render_generation_prompt(const Conversation& conversation,
                                     const std::map<std::string, float>& attributes,
                                     const TemplateOptions& options);

}  // namespace steerlm
