"""What repscope keeps on disk.

=========================  ========================================================
:mod:`.activation_store`   :class:`ActivationStore`: chunked Zarr activations with provenance
:mod:`.entry_writer`       writing one store entry atomically (:class:`EntryWriter`)
:mod:`.results_db`         :class:`ResultsDB`: result rows in SQLite, keyed for resuming
=========================  ========================================================
"""
