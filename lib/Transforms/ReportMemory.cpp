//===- ReportMemory.cpp - bpt-report-memory ---------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Analysis/MemoryReport.h"
#include "bpt/Transforms/Passes.h"

namespace bpt {
#define GEN_PASS_DEF_BPTREPORTMEMORY
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;

namespace {

struct BPTReportMemoryPass final
    : bpt::impl::BPTReportMemoryBase<BPTReportMemoryPass> {
  void runOnOperation() override {
    FailureOr<MemoryReport> report = computeMemoryReport(getOperation());
    if (failed(report))
      return signalPassFailure();
    InFlightDiagnostic remark =
        getOperation().emitRemark()
        << "bpt memory: peak " << report->peakBytes
        << " bytes of live intermediate buffers (" << report->numAllocations
        << " allocations)";
    for (Operation *alloc : report->liveAtPeak)
      remark.attachNote(alloc->getLoc())
          << "live at peak: " << alloc->getResult(0).getType() << ", "
          << allocationBytes(alloc) << " bytes";
    markAllAnalysesPreserved();
  }
};

} // namespace
