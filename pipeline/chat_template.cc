#include "pipeline/chat_template.h"

#include <glog/logging.h>

#include <algorithm>

namespace steerlm {
namespace {

// Appends text, marking it trained or not; adjacent trained pieces merge into one span.
class SpanWriter {
 public:
  void add(const std::string& piece, bool trained) {
    if (piece.empty()) return;
    const size_t begin = out_.text.size();
    out_.text += piece;
    if (!trained) return;
    if (!out_.trained.empty() && out_.trained.back().end == begin) {
      out_.trained.back().end = out_.text.size();
    } else {
      out_.trained.push_back({begin, out_.text.size()});
    }
  }
  RenderedText take() { return std::move(out_); }

 private:
  RenderedText out_;
};

std::string system_header(const Conversation& conversation, const TemplateOptions& options) {
  return std::string(kSystemMarker) + "System\n" +
         conversation.system.value_or(options.default_system) + "\n";
}

std::string assistant_header(const std::map<std::string, float>& attributes,
                             const TemplateOptions& options) {
  std::string header = std::string(kTurnMarker) + "Assistant\n";
  std::string label = format_label(attributes, options.attributes);
  // A turn without a label (or with none of the configured attributes) has no label line.
  if (!label.empty()) header += std::string(kLabelMarker) + label + "\n";
  return header;
}

}  // namespace

TemplateOptions make_template_options(const config::ChatTemplate& chat_template,
                                      const std::vector<std::string>& attributes) {
  TemplateOptions options;
  options.attributes.assign(chat_template.attributes().begin(), chat_template.attributes().end());
  if (options.attributes.empty()) options.attributes = attributes;
  options.default_system = chat_template.system_prompt();
  return options;
}

std::vector<Segment> RenderedText::segments() const {
  std::vector<Segment> pieces;
  size_t position = 0;
  for (const TextSpan& span : trained) {
    if (span.begin > position) pieces.push_back({text.substr(position, span.begin - position)});
    pieces.push_back({text.substr(span.begin, span.end - span.begin), true});
    position = span.end;
  }
  if (position < text.size()) pieces.push_back({text.substr(position)});
  return pieces;
}

bool RenderedText::is_trained(size_t offset) const {
  auto after =
      std::upper_bound(trained.begin(), trained.end(), offset,
                       [](size_t value, const TextSpan& span) { return value < span.end; });
  return after != trained.end() && after->begin <= offset;
}

RenderedText render_acsft(const Conversation& conversation, const TemplateOptions& options) {
  SpanWriter out;
  out.add(system_header(conversation, options), false);

  bool seen_user = false;
  for (const Turn& turn : conversation.turns) {
    if (turn.role == Role::kUser) {
      // A later user turn's marker ends the previous assistant turn, so it is trained.
      out.add(kTurnMarker, seen_user);
      out.add("User\n" + turn.text + "\n", false);
      seen_user = true;
    } else {
      out.add(assistant_header(turn.attributes, options), false);
      out.add(turn.text + "\n", true);
    }
  }

  // A conversation that ends on an assistant turn gets the end-of-turn marker, trained.
  if (!conversation.turns.empty() && conversation.turns.back().role == Role::kAssistant) {
    out.add(kTurnMarker, true);
  }
  return out.take();
}

std::string render_attribute_input(const Conversation& conversation, size_t turn_index,
                                   const TemplateOptions& options) {
  CHECK_LT(turn_index, conversation.turns.size());
  CHECK(conversation.turns[turn_index].role == Role::kAssistant);
  std::string text = system_header(conversation, options);
  for (size_t i = 0; i <= turn_index; ++i) {
    const Turn& turn = conversation.turns[i];
    text += std::string(kTurnMarker) + role_name(turn.role) + "\n" + turn.text + "\n";
  }
  return text + kLabelMarker;
}

std::string render_generation_prompt(const Conversation& conversation,
                                     const std::map<std::string, float>& attributes,
                                     const TemplateOptions& options) {
  CHECK(conversation.turns.empty() || conversation.turns.back().role == Role::kUser)
      << "a generation prompt ends on a user turn";
  std::string text = render_acsft(conversation, options).text;
  std::string header = std::string(kTurnMarker) + "Assistant\n" + kLabelMarker +
                       format_label(attributes, options.attributes) + "\n";
  return text + header;
}

}  // namespace steerlm
