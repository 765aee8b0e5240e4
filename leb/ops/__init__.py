"""Operations: demo data (`leb demo`) and benchmarks (`leb bench`)."""
