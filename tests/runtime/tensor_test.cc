// Tensor: shapes, views that share storage (reshape, slice), owning copies (clone, to), wrap.
#include "runtime/tensor.h"

#include <gtest/gtest.h>

#include <vector>

namespace steerlm {
namespace {

TEST(ShapeTest, DimsNumelAndText) {
  Shape shape{2, 3, 5};
  EXPECT_EQ(shape.ndim(), 3);
  EXPECT_EQ(shape.numel(), 30);
  EXPECT_EQ(shape[-1], 5);  // negative axes count from the end
  EXPECT_EQ(shape.str(), "(2, 3, 5)");
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar
  EXPECT_EQ((Shape{4, 0}.numel()), 0);
  EXPECT_TRUE((Shape{2, 3} == Shape(std::vector<int64_t>{2, 3})));
  EXPECT_FALSE((Shape{2, 3} == Shape{3, 2}));
}

TEST(ShapeDeathTest, MoreThanFourDimensionsIsAnError) {
  EXPECT_DEATH(Shape({1, 2, 3, 4, 5}), "at most 4 dimensions");
}

TEST(TensorTest, DtypeSizesAndNames) {
  EXPECT_EQ(dtype_size(DType::kF32), 4u);
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kI32), 4u);
  EXPECT_STREQ(dtype_name(DType::kBF16), "bf16");
  Tensor t = Tensor::zeros({3, 5}, DType::kBF16);
  EXPECT_EQ(t.nbytes(), 30u);
  EXPECT_EQ(t.to_floats(), std::vector<float>(15, 0.0f));
  EXPECT_EQ(t.device().str(), "cpu");
  EXPECT_EQ(Device::cuda(3).str(), "cuda:3");
}

TEST(TensorTest, ReshapeIsAViewOfTheSameStorage) {
  Tensor t = Tensor::from_floats({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = t.reshape({3, 2});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.raw(), t.raw());
  r.f32()[5] = 50.0f;
  EXPECT_EQ(t.to_floats()[5], 50.0f);
}

TEST(TensorTest, SliceTakesRowsAndSharesStorage) {
  Tensor t = Tensor::from_floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {4, 3});  // (4, 3)
  Tensor rows = t.slice(1, 3);                                                     // (2, 3)
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_EQ(rows.to_floats(), (std::vector<float>{3, 4, 5, 6, 7, 8}));

  // A slice of a slice keeps accumulating the offset.
  Tensor inner = rows.slice(1, 2);
  EXPECT_EQ(inner.to_floats(), (std::vector<float>{6, 7, 8}));
  inner.f32()[0] = -6.0f;
  EXPECT_EQ(t.to_floats()[6], -6.0f);

  // Empty slices are allowed; a reshaped slice is still a view.
  EXPECT_EQ(t.slice(2, 2).numel(), 0);
  Tensor flat = t.slice(2, 4).reshape({6});
  EXPECT_EQ(flat.to_floats(), (std::vector<float>{-6, 7, 8, 9, 10, 11}));
}

TEST(TensorTest, SliceOfBf16AndI32UsesTheirElementSize) {
  Tensor ints = Tensor::from_ints({1, 2, 3, 4, 5, 6}, {3, 2});
  EXPECT_EQ(ints.slice(2, 3).i32()[1], 6);
  Tensor halves = Tensor::zeros({3, 2}, DType::kBF16);
  halves.bf16()[4] = 0x3F80;  // 1.0
  EXPECT_EQ(halves.slice(2, 3).to_floats(), (std::vector<float>{1.0f, 0.0f}));
}

TEST(TensorTest, CloneAndToAreIndependentCopies) {
  Tensor t = Tensor::from_floats({1, 2, 3}, {3});
  Tensor copy = t.clone();
  Tensor moved = t.to(Device::cpu());
  EXPECT_NE(copy.raw(), t.raw());
  EXPECT_NE(moved.raw(), t.raw());
  t.f32()[0] = 100.0f;
  EXPECT_EQ(copy.to_floats(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(moved.to_floats(), (std::vector<float>{1, 2, 3}));

  // Clone of a view copies only the view.
  Tensor big = Tensor::from_floats({1, 2, 3, 4}, {2, 2});
  Tensor row = big.slice(1, 2).clone();
  EXPECT_EQ(row.shape(), (Shape{1, 2}));
  EXPECT_EQ(row.to_floats(), (std::vector<float>{3, 4}));
}

TEST(TensorTest, CopyFromAndZero) {
  Tensor source = Tensor::from_floats({1, 2, 3, 4}, {2, 2});
  Tensor destination = Tensor::empty({4}, DType::kF32);
  destination.copy_from(source);  // numel and dtype must agree; shapes need not
  EXPECT_EQ(destination.to_floats(), (std::vector<float>{1, 2, 3, 4}));
  destination.zero();
  EXPECT_EQ(destination.to_floats(), std::vector<float>(4, 0.0f));
}

TEST(TensorTest, WrapViewsExternalMemoryWithoutOwningIt) {
  std::vector<float> external{1, 2, 3, 4, 5, 6};
  {
    Tensor view = Tensor::wrap(external.data(), {2, 3}, DType::kF32);
    view.f32()[1] = 20.0f;
    EXPECT_EQ(view.raw(), external.data());
  }
  // The tensor is gone and the vector is intact (a wrap must not free it).
  EXPECT_EQ(external[1], 20.0f);
  EXPECT_EQ(external[5], 6.0f);
}

TEST(TensorTest, StorageOutlivesTheTensorThatMadeIt) {
  Tensor view;
  {
    Tensor owner = Tensor::from_floats({7, 8, 9}, {3});
    view = owner.slice(1, 3);
  }
  EXPECT_EQ(view.to_floats(), (std::vector<float>{8, 9}));
}

TEST(TensorDeathTest, MisuseIsCaught) {
  Tensor t = Tensor::zeros({2, 3}, DType::kF32);
  EXPECT_DEATH(t.reshape({4, 2}), "reshape \\(2, 3\\) -> \\(4, 2\\)");
  EXPECT_DEATH(t.slice(1, 3), "slice \\[1, 3\\) of \\(2, 3\\)");
  EXPECT_DEATH(t.i32(), "i32\\(\\) on a f32 tensor");
  Tensor other = Tensor::zeros({6}, DType::kI32);
  EXPECT_DEATH(other.copy_from(t), "f32 into i32");
}

}  // namespace
}  // namespace steerlm
