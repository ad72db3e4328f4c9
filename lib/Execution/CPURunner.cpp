//===- CPURunner.cpp - compile and check a function on the CPU --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Execution/CPURunner.h"

#include "bpt/Analysis/MemoryReport.h"
#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTOps.h"
#include "bpt/Execution/ReferenceInterpreter.h"
#include "bpt/Pipelines/Pipelines.h"
#include "bpt/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/ADT/StringMap.h"
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

/// The function `options` names, once its buffers are known to fit in host
/// memory.
FailureOr<func::FuncOp> findFunctionToRun(ModuleOp module,
                                          const CPUCheckOptions &options) {
  FailureOr<func::FuncOp> func = findFunction(module, options.function);
  if (failed(func) || failed(checkHostMemory(*func)))
    return failure();
  return func;
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
  return llvm::all_of(runs,
                      [](const Run &run) {
                        return llvm::all_of(
                            run.outputs,
                            [](const Output &o) { return o.passed; });
                      }) &&
         llvm::all_of(gradientChecks,
                      [](const GradientCheck &c) { return c.passed; });
}

CPUExecutable::CPUExecutable(ModuleOp module,
                             std::unique_ptr<ExecutionEngine> engine)
    : module(module), engine(std::move(engine)) {}

FailureOr<CPUExecutable> CPUExecutable::compile(ModuleOp module,
                                                unsigned optLevel) {
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
  // LLVM's loop analyses cost more than linearly in a function's blocks.
  // The backward of a block with unrolled query chunks (2900 to 6400
  // blocks) compiled in 5 to 28 s at level 2 and in under 2 s unoptimized;
  // at ~1000 blocks level 2 costs under a second more and runs the larger
  // shapes (examples/block.mlir's backward) twice as fast.
  constexpr size_t kMaxOptimizedBlocks = 1500;
  for (auto function : module.getOps<LLVM::LLVMFuncOp>())
    if (function.getBody().getBlocks().size() > kMaxOptimizedBlocks)
      optLevel = 0;
  // The options hold a function_ref: the transformer must outlive create().
  std::function<llvm::Error(llvm::Module *)> transformer =
      makeOptimizingTransformer(optLevel, /*sizeLevel=*/0,
                                /*targetMachine=*/nullptr);
  engineOptions.transformer = transformer;
  static constexpr llvm::CodeGenOptLevel codeGenLevels[] = {
      llvm::CodeGenOptLevel::None, llvm::CodeGenOptLevel::Less,
      llvm::CodeGenOptLevel::Default, llvm::CodeGenOptLevel::Aggressive};
  engineOptions.jitCodeGenOptLevel = codeGenLevels[std::min(optLevel, 3u)];
  engineOptions.sharedLibPaths = sharedLibs;
  auto engine = ExecutionEngine::create(module, engineOptions);
  if (!engine)
    return module.emitError() << "bpt CPU runner: JIT compilation failed: "
                              << llvm::toString(engine.takeError());
  return CPUExecutable(module, std::move(*engine));
}

LogicalResult CPUExecutable::call(StringRef function,
                                  std::vector<HostTensor> &buffers) {
  // Bare-pointer convention: the packed wrapper takes a pointer to each
  // argument, and each argument is the buffer's address.
  std::vector<void *> pointers, args;
  for (HostTensor &buffer : buffers)
    pointers.push_back(buffer.data());
  for (void *&pointer : pointers)
    args.push_back(&pointer);
  if (llvm::Error error = engine->invokePacked(function, args))
    return module.emitError() << "bpt CPU runner: call failed: "
                              << llvm::toString(std::move(error));
  return success();
}

namespace {

/// Seeded random values for the arguments of `func`: uniform in [-1, 1);
/// matrices (rank 2, read as [in, out]) scaled by 1/sqrt(in) so that
/// activations keep unit scale through the block.
FailureOr<std::vector<HostTensor>> randomArguments(func::FuncOp func,
                                                   std::mt19937_64 &rng) {
  std::vector<HostTensor> buffers;
  for (auto [index, type] : llvm::enumerate(func.getArgumentTypes())) {
    FailureOr<HostTensor> buffer = hostTensorFor(
        func.getLoc(), type, llvm::formatv("argument #{0}", index).str());
    if (failed(buffer))
      return failure();
    double scale = buffer->shape().size() == 2
                       ? 1.0 / std::sqrt(static_cast<double>(buffer->shape()[0]))
                       : 1.0;
    buffer->fillUniform(rng, scale);
    buffers.push_back(std::move(*buffer));
  }
  return buffers;
}

/// A poisoned buffer for each result of `func`.
FailureOr<std::vector<HostTensor>> resultBuffers(func::FuncOp func) {
  if (func.getNumResults() == 0)
    return func.emitError() << "bpt CPU runner: function '"
                            << func.getSymName() << "' has no results to check";
  std::vector<HostTensor> buffers;
  for (auto [index, type] : llvm::enumerate(func.getResultTypes())) {
    FailureOr<HostTensor> buffer = hostTensorFor(
        func.getLoc(), type, llvm::formatv("result #{0}", index).str());
    if (failed(buffer))
      return failure();
    buffer->poison();
    buffers.push_back(std::move(*buffer));
  }
  return buffers;
}

std::vector<ref::Tensor> toReference(ArrayRef<HostTensor> buffers) {
  std::vector<ref::Tensor> tensors;
  for (const HostTensor &buffer : buffers)
    tensors.push_back(buffer.toReference());
  return tensors;
}

/// Compiles a copy of `module` that keeps only the functions `names` for
/// the CPU with one block-size configuration, recording each function's
/// peak of live intermediate buffers in `run` (the largest of them).
FailureOr<OwningOpRef<ModuleOp>>
compileForCPU(ModuleOp module, ArrayRef<std::string> names,
              const CPUCheckOptions &options, CPUCheckResult::Run &run) {
  OwningOpRef<ModuleOp> copy = module.clone();
  for (auto other : llvm::to_vector(copy->getOps<func::FuncOp>()))
    if (!llvm::is_contained(names, other.getSymName()))
      other.erase();

  // Compile: to bufferized IR, measure, then on to LLVM.
  auto start = std::chrono::steady_clock::now();
  PassManager toBuffers(module.getContext());
  // The CPU runs every loop nest as loops: no kernel strategy to choose.
  BlockwiseOptions blockwise;
  blockwise.tensorCores = false;
  blockwise.qBlock = run.qBlock;
  blockwise.kvBlock = run.kvBlock;
  blockwise.fuse = options.fuse;
  blockwise.recomputeProjections = options.recomputeProjections;
  blockwise.reportBlockSizes = options.reportBlockSizes;
  blockwise.chunkRows = options.chunkRows;
  buildBPTBlockwisePipeline(toBuffers, blockwise);
  addLinalgStage(toBuffers);
  // As bpt-to-cpu and bpt-to-nvvm: the fused chains run against float64.
  toBuffers.nest<func::FuncOp>().addPass(createBPTFuseElementwise());
  addBufferizationStage(toBuffers);
  if (failed(toBuffers.run(*copy)))
    return failure();
  for (const std::string &name : names) {
    FailureOr<MemoryReport> memory =
        computeMemoryReport(copy->lookupSymbol<func::FuncOp>(name));
    if (failed(memory))
      return failure();
    if (memory->peakBytes >= run.peakBytes) {
      run.peakBytes = memory->peakBytes;
      run.numAllocations = memory->numAllocations;
    }
  }
  PassManager toLLVM(module.getContext());
  if (options.tileGemms)
    addGemmTiling(toLLVM);
  addHostLLVMStage(toLLVM);
  if (failed(toLLVM.run(*copy)))
    return failure();
  run.compileSeconds += secondsSince(start);
  return copy;
}

/// JIT-compiles `compiled` (compileForCPU's module), counted as compile time.
FailureOr<CPUExecutable> jitForCPU(ModuleOp compiled,
                                   const CPUCheckOptions &options,
                                   CPUCheckResult::Run &run) {
  auto start = std::chrono::steady_clock::now();
  FailureOr<CPUExecutable> executable =
      CPUExecutable::compile(compiled, options.optLevel);
  run.compileSeconds += secondsSince(start);
  return executable;
}

/// Runs `name` of the compiled module on `inputs` into freshly poisoned
/// `outputs`.
LogicalResult runPoisoned(CPUExecutable &executable, StringRef name,
                          ArrayRef<HostTensor> inputs,
                          std::vector<HostTensor> &outputs,
                          CPUCheckResult::Run &run) {
  std::vector<HostTensor> buffers(inputs.begin(), inputs.end());
  for (HostTensor &output : outputs) {
    output.poison();
    buffers.push_back(output);
  }
  auto start = std::chrono::steady_clock::now();
  if (failed(executable.call(name, buffers)))
    return failure();
  run.runSeconds += secondsSince(start);
  for (auto [output, buffer] :
       llvm::zip(outputs, ArrayRef(buffers).drop_front(inputs.size())))
    output = buffer;
  return success();
}

/// Compares outputs with the reference (and with `first`, the first
/// configuration's outputs under the same labels, which it fills on the
/// first call), appending to `run`. An output's tolerance is its type's,
/// or `tolerances[i]` where given.
void compareOutputs(ArrayRef<HostTensor> outputs,
                    ArrayRef<ref::Tensor> expected, StringRef label,
                    const CPUCheckOptions &options,
                    llvm::StringMap<ref::Tensor> &first,
                    CPUCheckResult::Run &run,
                    ArrayRef<double> tolerances = {}) {
  for (auto [index, output] : llvm::enumerate(outputs)) {
    const ref::Tensor &want = expected[index];
    ref::Tensor got = output.toReference();
    double tolerance = index < tolerances.size()
                           ? tolerances[index]
                           : dtypeTolerance(output.dtype());
    if (options.perturbOutput && run.outputs.empty() && !got.data.empty()) {
      double norm = 0;
      for (double v : want.data)
        norm += v * v;
      got.data[0] += 2 * tolerance * std::sqrt(norm);
    }
    std::string name = llvm::formatv("{0} {1}", label, index).str();
    double error = outputError(got, want, output.dtype());
    double difference = 0;
    auto [it, isFirst] = first.try_emplace(name, got);
    if (!isFirst)
      difference = outputError(got, it->second, output.dtype());
    // NaN compares false: a NaN never passes.
    bool passed = error <= tolerance && difference <= tolerance;
    run.outputs.push_back({name, output.typeString(), error, difference,
                           tolerance, passed});
  }
}

} // namespace

FailureOr<CPUCheckResult> bpt::checkOnCPU(ModuleOp module,
                                          const CPUCheckOptions &options) {
  if (options.backward)
    return checkGradientsOnCPU(module, options);
  FailureOr<func::FuncOp> maybeFunc = findFunctionToRun(module, options);
  if (failed(maybeFunc))
    return failure();
  func::FuncOp func = *maybeFunc;
  std::string name = func.getSymName().str();

  std::mt19937_64 rng(options.seed);
  FailureOr<std::vector<HostTensor>> inputs = randomArguments(func, rng);
  if (failed(inputs))
    return failure();
  FailureOr<std::vector<HostTensor>> outputs = resultBuffers(func);
  if (failed(outputs))
    return failure();

  CPUCheckResult result;
  auto start = std::chrono::steady_clock::now();
  FailureOr<std::vector<ref::Tensor>> expected =
      evaluateReference(func, toReference(*inputs));
  if (failed(expected))
    return failure();
  result.referenceSeconds = secondsSince(start);

  llvm::StringMap<ref::Tensor> first;
  for (auto [qBlock, kvBlock] : options.blockSizes) {
    CPUCheckResult::Run run{qBlock, kvBlock, {}, 0, 0, 0, 0};
    FailureOr<OwningOpRef<ModuleOp>> compiled =
        compileForCPU(module, {name}, options, run);
    if (failed(compiled))
      return failure();
    FailureOr<CPUExecutable> executable = jitForCPU(**compiled, options, run);
    if (failed(executable) ||
        failed(runPoisoned(*executable, name, *inputs, *outputs, run)))
      return failure();
    compareOutputs(*outputs, *expected, "output", options, first, run);
    result.runs.push_back(std::move(run));
  }
  return result;
}

namespace {

/// Σ_r <a_r, b_r> over lists of equally shaped tensors.
double dot(ArrayRef<ref::Tensor> a, ArrayRef<ref::Tensor> b) {
  double sum = 0;
  for (auto [x, y] : llvm::zip(a, b))
    for (auto [u, v] : llvm::zip(x.data, y.data))
      sum += u * v;
  return sum;
}

/// Checks the float64 gradients `grads` of `forward` (a function of `args`,
/// for the result gradients `resultGrads`) by central finite differences of
/// the reference interpreter along a random direction per argument: what
/// depends on bpt-build-backward's chain rule and on nothing of its own.
/// Differences at two steps, h and h/4, agree to O(h²) where the function
/// is smooth; where they do not, a kink (ReLU's, a mask's edge) lies within
/// the step, and another direction is drawn, up to kDirections. A wrong
/// gradient still fails: its two differences agree with each other, not
/// with it.
FailureOr<std::vector<CPUCheckResult::GradientCheck>>
checkByFiniteDifferences(func::FuncOp forward, ArrayRef<ref::Tensor> args,
                         ArrayRef<ref::Tensor> resultGrads,
                         ArrayRef<ref::Tensor> grads, std::mt19937_64 &rng) {
  constexpr double kStep = 1e-6, kTolerance = 1e-5;
  constexpr unsigned kDirections = 4;
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<CPUCheckResult::GradientCheck> checks;
  auto relative = [](double a, double b) {
    double scale = std::max(std::abs(a), std::abs(b));
    return scale == 0 ? 0 : std::abs(a - b) / scale;
  };
  // The arguments, argument i moved by `difference` (and restored after).
  std::vector<ref::Tensor> shifted(args.begin(), args.end());
  for (size_t i = 0; i < args.size(); ++i) {
    double rms = 0;
    for (double v : args[i].data)
      rms += v * v;
    // The step scales with the argument: an input scaled to 1/16 (a
    // 256-row "matrix" of random inputs) moved by 1e-6 crossed a few ReLU
    // kinks in every direction.
    rms = std::sqrt(rms / std::max<size_t>(1, args[i].data.size()));
    double step = kStep * (rms > 0 ? rms : 1.0);
    ref::Tensor direction(args[i].shape);
    // d/dt <resultGrads, forward(args + t·direction)> at t = 0. The two
    // sides are subtracted element by element before the dot product: the
    // results that do not depend on this argument then add exactly nothing,
    // where two whole dot products would differ by their rounding.
    auto difference = [&](double h) -> FailureOr<double> {
      std::vector<ref::Tensor> sides[2];
      for (int side = 0; side < 2; ++side) {
        double sign = side == 0 ? 1.0 : -1.0;
        for (auto [x, x0, u] :
             llvm::zip(shifted[i].data, args[i].data, direction.data))
          x = x0 + sign * h * u;
        FailureOr<std::vector<ref::Tensor>> results =
            evaluateReference(forward, shifted);
        if (failed(results))
          return failure();
        sides[side] = std::move(*results);
      }
      double sum = 0;
      for (auto [grad, plus, minus] :
           llvm::zip(resultGrads, sides[0], sides[1]))
        for (auto [g, p, m] : llvm::zip(grad.data, plus.data, minus.data))
          sum += g * (p - m);
      return sum / (2 * h);
    };
    CPUCheckResult::GradientCheck check{static_cast<unsigned>(i)};
    for (check.directions = 1;; ++check.directions) {
      for (double &v : direction.data)
        v = uniform(rng);
      FailureOr<double> wide = difference(step);
      FailureOr<double> narrow = difference(step / 4);
      if (failed(wide) || failed(narrow))
        return failure();
      check.numeric = *narrow;
      check.smooth = relative(*wide, *narrow) <= kTolerance / 4;
      if (check.smooth || check.directions == kDirections)
        break;
    }
    check.analytic = dot(ArrayRef(grads[i]), ArrayRef(direction));
    check.relativeError = relative(check.numeric, check.analytic);
    check.tolerance = kTolerance;
    check.passed = check.relativeError <= kTolerance;
    checks.push_back(check);
    shifted[i] = args[i];
  }
  return checks;
}

} // namespace

FailureOr<CPUCheckResult>
bpt::checkGradientsOnCPU(ModuleOp module, const CPUCheckOptions &options) {
  FailureOr<func::FuncOp> maybeFunc = findFunctionToRun(module, options);
  if (failed(maybeFunc))
    return failure();
  func::FuncOp func = *maybeFunc;
  std::string name = func.getSymName().str();

  // The training forward and the backward, next to the function.
  OwningOpRef<ModuleOp> trained = module.clone();
  {
    PassManager build(module.getContext());
    BPTBuildBackwardOptions buildOptions;
    buildOptions.functions = {name};
    buildOptions.queryChunk = options.queryChunk;
    build.addPass(createBPTBuildBackward(buildOptions));
    if (failed(build.run(*trained)))
      return failure();
  }
  std::string trainName = name + "_train", gradName = name + "_grad";
  auto forward = trained->lookupSymbol<func::FuncOp>(name);
  auto train = trained->lookupSymbol<func::FuncOp>(trainName);
  auto grad = trained->lookupSymbol<func::FuncOp>(gradName);

  std::mt19937_64 rng(options.seed);
  FailureOr<std::vector<HostTensor>> inputs = randomArguments(func, rng);
  FailureOr<std::vector<HostTensor>> trainOutputs = resultBuffers(train);
  FailureOr<std::vector<HostTensor>> gradOutputs = resultBuffers(grad);
  if (failed(inputs) || failed(trainOutputs) || failed(gradOutputs))
    return failure();
  // The upstream gradients: uniform in [-1, 1), like the inputs.
  std::vector<HostTensor> resultGrads;
  for (auto [index, type] : llvm::enumerate(func.getResultTypes())) {
    FailureOr<HostTensor> buffer = hostTensorFor(
        func.getLoc(), type,
        llvm::formatv("the gradient of result #{0}", index).str());
    if (failed(buffer))
      return failure();
    buffer->fillUniform(rng, 1.0);
    resultGrads.push_back(std::move(*buffer));
  }
  size_t numResults = func.getNumResults();
  // A log-sum-exp is f32 but computed from the attention's operands: it is
  // as exact as their type.
  std::vector<double> trainTolerances;
  for (const HostTensor &output : *trainOutputs)
    trainTolerances.push_back(dtypeTolerance(output.dtype()));
  for (auto [index, attention] :
       llvm::enumerate(train.getOps<AttentionOp>()))
    if (std::optional<DType> dtype =
            getDType(attention.getQuery().getType().getElementType()))
      trainTolerances[numResults + index] = dtypeTolerance(*dtype);

  // The reference: the training forward and the backward in float64, the
  // backward fed the reference's log-sum-exps; then finite differences of
  // the function itself.
  CPUCheckResult result;
  auto start = std::chrono::steady_clock::now();
  std::vector<ref::Tensor> refArgs = toReference(*inputs);
  std::vector<ref::Tensor> refResultGrads = toReference(resultGrads);
  FailureOr<std::vector<ref::Tensor>> trainExpected =
      evaluateReference(train, refArgs);
  if (failed(trainExpected))
    return failure();
  std::vector<ref::Tensor> gradArgs = refArgs;
  gradArgs.insert(gradArgs.end(), trainExpected->begin() + numResults,
                  trainExpected->end());
  llvm::append_range(gradArgs, refResultGrads);
  FailureOr<std::vector<ref::Tensor>> gradExpected =
      evaluateReference(grad, gradArgs);
  if (failed(gradExpected))
    return failure();
  FailureOr<std::vector<CPUCheckResult::GradientCheck>> checks =
      checkByFiniteDifferences(forward, refArgs, refResultGrads,
                               *gradExpected, rng);
  if (failed(checks))
    return failure();
  result.gradientChecks = std::move(*checks);
  result.referenceSeconds = secondsSince(start);

  // Compiled: the training forward, then the backward fed its own
  // log-sum-exps, as training would.
  llvm::StringMap<ref::Tensor> first;
  for (auto [qBlock, kvBlock] : options.blockSizes) {
    CPUCheckResult::Run run{qBlock, kvBlock, {}, 0, 0, 0, 0};
    FailureOr<OwningOpRef<ModuleOp>> compiled =
        compileForCPU(*trained, {trainName, gradName}, options, run);
    if (failed(compiled))
      return failure();
    // One JIT for both functions.
    FailureOr<CPUExecutable> executable = jitForCPU(**compiled, options, run);
    if (failed(executable) || failed(runPoisoned(*executable, trainName,
                                                 *inputs, *trainOutputs, run)))
      return failure();
    compareOutputs(*trainOutputs, *trainExpected, "forward", options, first,
                   run, trainTolerances);
    std::vector<HostTensor> gradInputs = *inputs;
    gradInputs.insert(gradInputs.end(), trainOutputs->begin() + numResults,
                      trainOutputs->end());
    llvm::append_range(gradInputs, resultGrads);
    if (failed(
            runPoisoned(*executable, gradName, gradInputs, *gradOutputs, run)))
      return failure();
    compareOutputs(*gradOutputs, *gradExpected, "gradient", options, first,
                   run);
    result.runs.push_back(std::move(run));
  }
  return result;
}

void bpt::printCheckResult(llvm::raw_ostream &os,
                           const CPUCheckResult &result) {
  for (const CPUCheckResult::Run &run : result.runs) {
    os << llvm::formatv("q-block {0}, kv-block {1}:\n", run.qBlock,
                        run.kvBlock);
    for (const CPUCheckResult::Output &output : run.outputs)
      os << llvm::formatv("  {0} {1}: relative error {2:e2}, vs first "
                          "configuration {3:e2} (tolerance {4:e0}): {5}\n",
                          output.name, output.type, output.relativeError,
                          output.differenceFromFirst, output.tolerance,
                          output.passed ? "PASS" : "FAIL");
    os << llvm::formatv("  memory: peak {0} bytes of live intermediate "
                        "buffers ({1} allocations)\n",
                        run.peakBytes, run.numAllocations);
    os << llvm::formatv("  time: compile {0:f2} s, run {1:f2} s\n",
                        run.compileSeconds, run.runSeconds);
  }
  for (const CPUCheckResult::GradientCheck &check : result.gradientChecks) {
    os << llvm::formatv("finite differences, argument {0}: float64 gradient "
                        "{1:e6} vs {2:e6}, relative error {3:e2} (tolerance "
                        "{4:e0}): {5}",
                        check.argument, check.analytic, check.numeric,
                        check.relativeError, check.tolerance,
                        check.passed ? "PASS" : "FAIL");
    if (!check.smooth)
      os << llvm::formatv(" (no smooth direction in {0}: the point lies on "
                          "a kink, such as a ReLU input at 0; another --seed "
                          "moves it)",
                          check.directions);
    else if (check.directions > 1)
      os << llvm::formatv(" (direction {0}: the differences disagreed "
                          "across a kink before)",
                          check.directions);
    os << "\n";
  }
  os << llvm::formatv("reference: {0:f2} s\n", result.referenceSeconds);
  os << (result.passed() ? "PASS" : "FAIL") << "\n";
}
