//===- CPURunner.cpp - compile and check a function on the CPU --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Execution/CPURunner.h"

#include "bpt/Analysis/MemoryReport.h"
#include "bpt/Execution/ReferenceInterpreter.h"
#include "bpt/Pipelines/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/TargetSelect.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace bpt;

#ifndef BPT_C_RUNNER_UTILS
#define BPT_C_RUNNER_UTILS "/usr/lib/llvm-22/lib/libmlir_c_runner_utils.so"
#endif

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       start)
      .count();
}

/// A host buffer for a tensor type, or failure with a diagnostic.
FailureOr<HostTensor> hostTensorFor(Location loc, Type type, StringRef what) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  std::optional<DType> dtype =
      tensor ? getDType(tensor.getElementType()) : std::nullopt;
  if (!tensor || !tensor.hasStaticShape() || !dtype)
    return emitError(loc) << "bpt CPU runner: " << what
                          << " must be a statically shaped tensor of f32, "
                             "f16 or bf16, got "
                          << type;
  if (tensor.getNumElements() == 0)
    return emitError(loc) << "bpt CPU runner: " << what
                          << " is empty (" << type
                          << "): there is nothing to check";
  return HostTensor(std::vector<int64_t>(tensor.getShape().begin(),
                                         tensor.getShape().end()),
                    *dtype);
}

/// Bytes of host memory per element of an argument or result: its buffer
/// (at most 4 bytes), its float64 copy for the reference and the
/// reference's own float64 result.
constexpr int64_t kHostBytesPerElement = 4 + 8 + 8;

/// Checks, before anything is allocated, that the function's arguments and
/// results fit in this machine's memory: an allocation that fails inside
/// LLVM's new handler is a fatal "LLVM ERROR: out of memory", not a
/// diagnostic.
LogicalResult checkHostMemory(func::FuncOp func) {
  int64_t total = 0;
  bool overflow = false;
  SmallVector<Type> types = llvm::to_vector(func.getArgumentTypes());
  llvm::append_range(types, func.getResultTypes());
  for (Type type : types) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape())
      continue; // hostTensorFor reports it
    int64_t bytes = kHostBytesPerElement;
    for (int64_t dim : tensor.getShape())
      overflow |= dim > 0 && llvm::MulOverflow(bytes, dim, bytes);
    overflow |= llvm::AddOverflow(total, bytes, total);
  }
  long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGE_SIZE);
  int64_t available = pages > 0 && pageSize > 0
                          ? int64_t(pages) * int64_t(pageSize)
                          : std::numeric_limits<int64_t>::max();
  if (!overflow && total <= available)
    return success();
  InFlightDiagnostic diag = func.emitError()
                            << "bpt CPU runner: the arguments and results of '"
                            << func.getSymName() << "' need ";
  if (overflow)
    diag << "more than 2^63 bytes";
  else
    diag << "about " << total << " bytes";
  return diag << " of host memory (with their float64 copies), more than "
                 "this machine's "
              << available << " bytes; run smaller shapes";
}

FailureOr<func::FuncOp> findFunction(ModuleOp module, StringRef name) {
  SmallVector<func::FuncOp> funcs;
  for (auto func : module.getOps<func::FuncOp>())
    if (!func.isExternal() && (name.empty() || func.getSymName() == name))
      funcs.push_back(func);
  if (funcs.size() == 1)
    return funcs.front();
  if (!name.empty())
    return module.emitError()
           << "bpt CPU runner: no function named '" << name << "'";
  return module.emitError()
         << "bpt CPU runner: expected one function, found " << funcs.size()
         << "; choose one with --function";
}

} // namespace

std::optional<DType> bpt::getDType(Type elementType) {
  if (elementType.isF32())
    return DType::F32;
  if (elementType.isF16())
    return DType::F16;
  if (elementType.isBF16())
    return DType::BF16;
  return std::nullopt;
}

bool CPUCheckResult::passed() const {
  return llvm::all_of(runs, [](const Run &run) {
    return llvm::all_of(run.outputs,
                        [](const Output &o) { return o.passed; });
  });
}

LogicalResult bpt::runOnCPU(ModuleOp module, StringRef function,
                            std::vector<HostTensor> &buffers) {
  static bool initialized = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialized;

  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  module.getContext()->appendDialectRegistry(registry);

  // memref.copy of strided views calls memrefCopy from the C runner utils.
  StringRef sharedLibs[] = {BPT_C_RUNNER_UTILS};
  ExecutionEngineOptions engineOptions;
  auto transformer = makeOptimizingTransformer(/*optLevel=*/2,
                                               /*sizeLevel=*/0,
                                               /*targetMachine=*/nullptr);
  engineOptions.transformer = transformer;
  engineOptions.sharedLibPaths = sharedLibs;
  auto engine = ExecutionEngine::create(module, engineOptions);
  if (!engine)
    return module.emitError() << "bpt CPU runner: JIT compilation failed: "
                              << llvm::toString(engine.takeError());

  // Bare-pointer convention: the packed wrapper takes a pointer to each
  // argument, and each argument is the buffer's address.
  std::vector<void *> pointers, args;
  for (HostTensor &buffer : buffers)
    pointers.push_back(buffer.data());
  for (void *&pointer : pointers)
    args.push_back(&pointer);
  if (llvm::Error error = (*engine)->invokePacked(function, args))
    return module.emitError() << "bpt CPU runner: call failed: "
                              << llvm::toString(std::move(error));
  return success();
}

FailureOr<CPUCheckResult> bpt::checkOnCPU(ModuleOp module,
                                          const CPUCheckOptions &options) {
  FailureOr<func::FuncOp> maybeFunc = findFunction(module, options.function);
  if (failed(maybeFunc))
    return failure();
  func::FuncOp func = *maybeFunc;
  std::string name = func.getSymName().str();

  if (failed(checkHostMemory(func)))
    return failure();

  // Inputs: uniform in [-1, 1); matrices (rank 2, read as [in, out]) scaled
  // by 1/sqrt(in) so that activations keep unit scale through the block.
  std::vector<HostTensor> buffers;
  std::mt19937_64 rng(options.seed);
  for (auto [index, type] : llvm::enumerate(func.getArgumentTypes())) {
    FailureOr<HostTensor> buffer =
        hostTensorFor(func.getLoc(), type, llvm::formatv("argument #{0}", index).str());
    if (failed(buffer))
      return failure();
    double scale = buffer->shape().size() == 2
                       ? 1.0 / std::sqrt(static_cast<double>(buffer->shape()[0]))
                       : 1.0;
    buffer->fillUniform(rng, scale);
    buffers.push_back(std::move(*buffer));
  }
  size_t numInputs = buffers.size();
  if (func.getNumResults() == 0)
    return func.emitError() << "bpt CPU runner: function '" << name
                            << "' has no results to check";
  for (auto [index, type] : llvm::enumerate(func.getResultTypes())) {
    FailureOr<HostTensor> buffer =
        hostTensorFor(func.getLoc(), type, llvm::formatv("result #{0}", index).str());
    if (failed(buffer))
      return failure();
    buffer->poison();
    buffers.push_back(std::move(*buffer));
  }

  CPUCheckResult result;
  auto start = std::chrono::steady_clock::now();
  std::vector<ref::Tensor> refArgs;
  for (size_t i = 0; i < numInputs; ++i)
    refArgs.push_back(buffers[i].toReference());
  FailureOr<std::vector<ref::Tensor>> expected =
      evaluateReference(func, refArgs);
  if (failed(expected))
    return failure();
  result.referenceSeconds = secondsSince(start);

  std::vector<ref::Tensor> firstOutputs;
  for (auto [qBlock, kvBlock] : options.blockSizes) {
    CPUCheckResult::Run run{qBlock, kvBlock, {}, 0, 0, 0, 0};
    // Compile the chosen function only.
    OwningOpRef<ModuleOp> copy = module.clone();
    for (auto other : llvm::to_vector(copy->getOps<func::FuncOp>()))
      if (other.getSymName() != name)
        other.erase();

    // Compile: to bufferized IR, measure, then on to LLVM.
    start = std::chrono::steady_clock::now();
    PassManager toBuffers(module.getContext());
    // The CPU runs every loop nest as loops: no kernel strategy to choose.
    BlockwiseOptions blockwise;
    blockwise.tensorCores = false;
    blockwise.qBlock = qBlock;
    blockwise.kvBlock = kvBlock;
    blockwise.fuse = options.fuse;
    buildBPTBlockwisePipeline(toBuffers, blockwise);
    addLinalgStage(toBuffers);
    addBufferizationStage(toBuffers);
    if (failed(toBuffers.run(*copy)))
      return failure();
    FailureOr<MemoryReport> memory =
        computeMemoryReport(copy->lookupSymbol<func::FuncOp>(name));
    if (failed(memory))
      return failure();
    run.peakBytes = memory->peakBytes;
    run.numAllocations = memory->numAllocations;
    PassManager toLLVM(module.getContext());
    addHostLLVMStage(toLLVM);
    if (failed(toLLVM.run(*copy)))
      return failure();
    run.compileSeconds = secondsSince(start);

    for (size_t i = numInputs; i < buffers.size(); ++i)
      buffers[i].poison();
    start = std::chrono::steady_clock::now();
    if (failed(runOnCPU(*copy, name, buffers)))
      return failure();
    run.runSeconds = secondsSince(start);

    for (size_t i = numInputs; i < buffers.size(); ++i) {
      size_t index = i - numInputs;
      const ref::Tensor &want = (*expected)[index];
      ref::Tensor got = buffers[i].toReference();
      double tolerance = dtypeTolerance(buffers[i].dtype());
      if (options.perturbOutput && index == 0 && !got.data.empty()) {
        double norm = 0;
        for (double v : want.data)
          norm += v * v;
        got.data[0] += 2 * tolerance * std::sqrt(norm);
      }
      double error = ref::relativeError(got, want);
      double difference = 0;
      if (firstOutputs.size() > index)
        difference = ref::relativeError(got, firstOutputs[index]);
      else
        firstOutputs.push_back(got);
      // NaN compares false: a NaN never passes.
      bool passed = error <= tolerance && difference <= tolerance;
      run.outputs.push_back(
          {buffers[i].typeString(), error, difference, tolerance, passed});
    }
    result.runs.push_back(std::move(run));
  }
  return result;
}

void bpt::printCheckResult(llvm::raw_ostream &os,
                           const CPUCheckResult &result) {
  for (const CPUCheckResult::Run &run : result.runs) {
    os << llvm::formatv("q-block {0}, kv-block {1}:\n", run.qBlock,
                        run.kvBlock);
    for (auto [index, output] : llvm::enumerate(run.outputs))
      os << llvm::formatv("  output {0} {1}: relative error {2:e2}, vs first "
                          "configuration {3:e2} (tolerance {4:e0}): {5}\n",
                          index, output.type, output.relativeError,
                          output.differenceFromFirst, output.tolerance,
                          output.passed ? "PASS" : "FAIL");
    os << llvm::formatv("  memory: peak {0} bytes of live intermediate "
                        "buffers ({1} allocations)\n",
                        run.peakBytes, run.numAllocations);
    os << llvm::formatv("  time: compile {0:f2} s, run {1:f2} s\n",
                        run.compileSeconds, run.runSeconds);
  }
  os << llvm::formatv("reference: {0:f2} s\n", result.referenceSeconds);
  os << (result.passed() ? "PASS" : "FAIL") << "\n";
}
