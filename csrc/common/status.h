// What a kernel launcher returns: ok, or a code and a message. Each front door maps the code
// to its own error: TensorFlow's InvalidArgument / ResourceExhausted / Internal, Python's
// ValueError / MemoryError / RuntimeError. Framework-neutral.
#pragma once

#include <string>
#include <utility>

namespace alexops {

class Status {
 public:
  enum class Code { kOk, kInvalidArgument, kResourceExhausted, kInternal };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }
  static Status ResourceExhausted(std::string message) { return Status(Code::kResourceExhausted, std::move(message)); }
  static Status Internal(std::string message) { return Status(Code::kInternal, std::move(message)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace alexops
