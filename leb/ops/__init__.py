"""Operations: demo data (`leb demo`), benchmarks (`leb bench`) and `leb serve`."""
