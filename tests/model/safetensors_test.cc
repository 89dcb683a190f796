// safetensors I/O: exact bytes on disk, dtype conversions, and the errors for corrupt files.
#include "runtime/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/file_util.h"
#include "tests/model/test_dirs.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;
using testing_dirs::expect_user_error;

// A file made by hand: header JSON (unpadded) followed by `data`.
void write_raw(const fs::path& path, const std::string& header, const std::string& data) {
  uint64_t length = header.size();
  std::string bytes(reinterpret_cast<const char*>(&length), 8);
  write_file_atomic(path, bytes + header + data);
}

TEST(Safetensors, RoundTripKeepsDtypesShapesBytesAndMetadata) {
  fs::path path = testing_dirs::fresh_directory("st") / "t.safetensors";
  Tensor weights = Tensor::from_floats({1.5f, -2.25f, 3e-8f, 7.0f, -0.0f, 1e30f}, {2, 3});
  Tensor ids = Tensor::from_ints({1, -2, 3, 2147483647, -2147483647 - 1, 0, 5, 6}, {2, 2, 2});
  Tensor half = Tensor::empty({3}, DType::kBF16);
  const uint16_t half_bits[3] = {0x3F80, 0xC040, 0x0001};
  std::memcpy(half.raw(), half_bits, sizeof(half_bits));
  write_safetensors(path, {{"w", weights}, {"ids", ids}, {"h", half}}, {{"step", "12"}});

  // Layout: 8-byte length, space-padded header (multiple of 8), then the data in order.
  std::string bytes = read_file(path);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  EXPECT_EQ(header_length % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header_length + 24 + 32 + 6);
  auto header = nlohmann::json::parse(bytes.substr(8, header_length));
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["data_offsets"], nlohmann::json::array({0, 24}));
  EXPECT_EQ(header["ids"]["data_offsets"], nlohmann::json::array({24, 56}));
  EXPECT_EQ(header["h"]["dtype"], "BF16");
  EXPECT_EQ(header["h"]["shape"], nlohmann::json::array({3}));
  EXPECT_EQ(header["__metadata__"]["step"], "12");
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + header_length, weights.raw(), 24), 0);

  // Reading gives the same names, shapes, dtypes and bytes back.
  SafetensorsFile file(path);
  ASSERT_EQ(file.entries().size(), 3u);
  EXPECT_EQ(file.entries()[0].name, "w");
  EXPECT_EQ(file.entries()[1].name, "ids");
  EXPECT_EQ(file.metadata().at("step"), "12");
  Tensor w = file.view("w");
  EXPECT_EQ(w.shape(), Shape({2, 3}));
  EXPECT_EQ(std::memcmp(w.raw(), weights.raw(), weights.nbytes()), 0);
  Tensor i = file.view("ids");
  EXPECT_EQ(i.dtype(), DType::kI32);
  EXPECT_EQ(i.shape(), Shape({2, 2, 2}));
  EXPECT_EQ(std::memcmp(i.raw(), ids.raw(), ids.nbytes()), 0);
  EXPECT_EQ(file.view("h").dtype(), DType::kBF16);
  EXPECT_EQ(file.read("h").to_floats(), (std::vector<float>{1.0f, -3.0f, 0x1.0p-133f}));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp." + std::to_string(::getpid())));
}

TEST(Safetensors, ConvertsHalfAndBf16ToF32AndRoundsF32ToBf16) {
  fs::path path = testing_dirs::fresh_directory("st") / "h.safetensors";
  // F16: 1, -2, the smallest subnormal 2^-24, +inf, 65504 (the largest finite half).
  const uint16_t halves[5] = {0x3C00, 0xC000, 0x0001, 0x7C00, 0x7BFF};
  // F32 for bf16 narrowing: 1 + 2^-8 is a tie (rounds to even 1), 1 + 3*2^-8 rounds up.
  const float floats[2] = {1.0f + 0x1.0p-8f, 1.0f + 3 * 0x1.0p-8f};
  std::string data(reinterpret_cast<const char*>(halves), 10);
  data += std::string(2, '\0');
  data += std::string(reinterpret_cast<const char*>(floats), 8);
  write_raw(path,
            R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
            R"("f":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
            data);

  SafetensorsFile file(path);
  std::vector<float> h = file.read("h").to_floats();
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 0x1.0p-24f);
  EXPECT_TRUE(std::isinf(h[3]) && h[3] > 0);
  EXPECT_EQ(h[4], 65504.0f);
  Tensor narrowed = file.read("f", DType::kBF16);
  EXPECT_EQ(narrowed.bf16()[0], 0x3F80);  // 1.0
  EXPECT_EQ(narrowed.bf16()[1], 0x3F82);  // 1 + 2^-6
}

TEST(Safetensors, CorruptFilesAndMismatchedShapesAreUserErrors) {
  fs::path directory = testing_dirs::fresh_directory("st");
  fs::path short_data = directory / "short.safetensors";
  write_raw(short_data, R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
            std::string(8, '\0'));
  EXPECT_EQ(expect_user_error([&] { SafetensorsFile file(short_data); }),
            short_data.string() +
                ": tensor x has data_offsets [0, 16] that do not fit its shape (2, 2) F32 within "
                "8 data bytes");

  fs::path bad_dtype = directory / "dtype.safetensors";
  write_raw(bad_dtype, R"({"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
            std::string(8, '\0'));
  EXPECT_EQ(
      expect_user_error([&] { SafetensorsFile file(bad_dtype); }),
      bad_dtype.string() + ": tensor x has unsupported dtype F64 (supported: F32, BF16, F16, I32)");

  fs::path huge_header = directory / "header.safetensors";
  write_file_atomic(huge_header, std::string("\xff\x00\x00\x00\x00\x00\x00\x00", 8) + "{}");
  EXPECT_EQ(expect_user_error([&] { SafetensorsFile file(huge_header); }),
            huge_header.string() +
                ": not a safetensors file (header length 255 exceeds the file size 10)");

  fs::path good = directory / "good.safetensors";
  write_safetensors(good, {{"x", Tensor::from_floats({1, 2, 3, 4}, {2, 2})}});
  SafetensorsFile file(good);
  Tensor wrong = Tensor::empty({4}, DType::kF32);
  EXPECT_EQ(expect_user_error([&] { file.read_into("x", wrong); }),
            good.string() + ": tensor x has shape (2, 2) but (4) is expected");
  EXPECT_EQ(expect_user_error([&] { file.entry("y"); }), good.string() + ": no tensor y");
}

}  // namespace
}  // namespace steerlm
