#include "pipeline/tokenizer_llama2c.h"

#include <cstring>
#include <queue>
#include <unordered_map>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

struct Piece {
  std::string text;
  float score = 0;
};

// The pieces of a llama2.c tokenizer file, or an error message saying why it is not one.
bool parse_pieces(const std::string& contents, std::vector<Piece>* pieces, std::string* why) {
  size_t offset = 0;
  auto read_int = [&](int32_t* value) {
    if (offset + 4 > contents.size()) return false;
    std::memcpy(value, contents.data() + offset, 4);
    offset += 4;
    return true;
  };
  int32_t max_token_length = 0;
  if (!read_int(&max_token_length) || max_token_length <= 0 || max_token_length > 1024) {
    *why = "its first int32 (max_token_length) is not in 1..1024";
    return false;
  }
  while (offset < contents.size()) {
    Piece piece;
    int32_t length = 0;
    if (offset + 8 > contents.size()) {
      *why = "it ends inside the record of piece " + std::to_string(pieces->size());
      return false;
    }
    std::memcpy(&piece.score, contents.data() + offset, 4);
    offset += 4;
    read_int(&length);
    if (length < 0 || length > max_token_length || offset + length > contents.size()) {
      *why = "piece " + std::to_string(pieces->size()) + " has length " + std::to_string(length) +
             " (max_token_length " + std::to_string(max_token_length) + ")";
      return false;
    }
    piece.text = contents.substr(offset, length);
    offset += length;
    pieces->push_back(std::move(piece));
  }
  // Ids 0..258 are <unk>, BOS, EOS and the 256 byte-fallback pieces.
  if (pieces->size() < 259) {
    *why = "it has " + std::to_string(pieces->size()) + " pieces, fewer than the 259 reserved ones";
    return false;
  }
  return true;
}

// Length of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte).
size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

class Llama2cTokenizer : public Tokenizer {
 public:
  explicit Llama2cTokenizer(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {
    for (size_t id = 0; id < pieces_.size(); ++id) {
      // The first id wins for duplicated texts, as run.c's sorted lookup finds the first.
      ids_.emplace(pieces_[id].text, static_cast<int32_t>(id));
    }
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (const TokenSpan& span : encode_with_spans(text)) ids.push_back(span.id);
    return ids;
  }

  std::vector<TokenSpan> encode_with_spans(std::string_view text) const override;

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    bool first = true;
    for (int32_t id : ids) {
      if (id == bos_id() || id == eos_id()) continue;
      if (id < 0 || id >= vocab_size()) continue;
      std::string piece = piece_text(id);
      // The dummy-prefix space of the first piece is not part of the text (run.c drops it after
      // BOS; SentencePiece drops it at the start).
      if (first && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
      first = false;
      text += piece;
    }
    return text;
  }

  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  std::string kind() const override { return "llama2c"; }

 private:
  // A piece's bytes; "<0xHH>" byte-fallback pieces become the byte itself.
  std::string piece_text(int32_t id) const {
    const std::string& text = pieces_[id].text;
    if (id >= kFirstByteId && id < kFirstByteId + 256 && text.size() == 6 && text[0] == '<') {
      return std::string(1, static_cast<char>(id - kFirstByteId));
    }
    return text;
  }

  int32_t find(std::string_view text) const {
    auto found = ids_.find(std::string(text));
    return found == ids_.end() ? -1 : found->second;
  }

  static constexpr int32_t kFirstByteId = 3;

  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
};

// One symbol of the text being merged: a byte range of the prefixed text and its piece id.
struct Symbol {
  size_t begin = 0;
  size_t end = 0;
  int32_t id = 0;
  int prev = -1;
  int next = -1;
  bool mergeable = true;  // byte-fallback symbols never merge (run.c concatenates "<0x..>")
  bool alive = true;
};

// A candidate merge of symbols left and right into `id`; valid while both still span
// [begin, end) as they did when it was queued.
struct Candidate {
  float score;
  size_t begin;
  size_t end;
  int left;
  int right;
  int32_t id;
  // Highest score first, then leftmost, as run.c's scan chooses.
  bool operator<(const Candidate& other) const {
    if (score != other.score) return score < other.score;
    return begin > other.begin;
  }
};

std::vector<TokenSpan> Llama2cTokenizer::encode_with_spans(std::string_view text) const {
  std::vector<TokenSpan> spans;
  if (text.empty()) return spans;

  // Step 1: the dummy prefix, then one symbol per code point (or per byte when unknown).
  std::string prefixed = " " + std::string(text);
  std::vector<Symbol> symbols;
  for (size_t at = 0; at < prefixed.size();) {
    size_t length = std::min(utf8_length(prefixed[at]), prefixed.size() - at);
    int32_t id = find(std::string_view(prefixed).substr(at, length));
    if (id >= 0) {
      symbols.push_back({at, at + length, id});
    } else {
      for (size_t byte = at; byte < at + length; ++byte) {
        int32_t byte_id = kFirstByteId + static_cast<unsigned char>(prefixed[byte]);
        symbols.push_back({byte, byte + 1, byte_id, -1, -1, false});
      }
    }
    at += length;
  }
  for (size_t i = 0; i < symbols.size(); ++i) {
    symbols[i].prev = static_cast<int>(i) - 1;
    symbols[i].next = i + 1 < symbols.size() ? static_cast<int>(i) + 1 : -1;
  }

  // Step 2: merge the best adjacent pair until none merges.
  std::priority_queue<Candidate> queue;
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    if (!symbols[left].mergeable || !symbols[right].mergeable) return;
    size_t begin = symbols[left].begin;
    size_t end = symbols[right].end;
    int32_t id = find(std::string_view(prefixed).substr(begin, end - begin));
    if (id >= 0) queue.push({pieces_[id].score, begin, end, left, right, id});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i, i + 1);
  while (!queue.empty()) {
    Candidate best = queue.top();
    queue.pop();
    Symbol& left = symbols[best.left];
    Symbol& right = symbols[best.right];
    bool stale = !left.alive || !right.alive || left.next != best.right ||
                 left.begin != best.begin || right.end != best.end;
    if (stale) continue;
    left.end = right.end;
    left.id = best.id;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = best.left;
    right.alive = false;
    consider(left.prev, best.left);
    consider(best.left, left.next);
  }

  // Step 3: spans in the caller's text; the prefix space belongs to no input byte.
  for (int i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& symbol = symbols[i];
    size_t begin = symbol.begin == 0 ? 0 : symbol.begin - 1;
    spans.push_back({symbol.id, begin, symbol.end - 1});
  }
  return spans;
}

}  // namespace

bool looks_like_llama2c_tokenizer(const std::string& contents) {
  std::vector<Piece> pieces;
  std::string why;
  return parse_pieces(contents, &pieces, &why);
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path) {
  std::string contents = read_file(path);
  std::vector<Piece> pieces;
  std::string why;
  if (!parse_pieces(contents, &pieces, &why)) {
    throw UserError(path + ": not a llama2.c tokenizer .bin: " + why);
  }
  return std::make_unique<Llama2cTokenizer>(std::move(pieces));
}

}  // namespace steerlm
