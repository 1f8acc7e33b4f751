"""Running comparisons: one pair, all pairs, streamed or on a cluster.

Data flow: representations → validated → prepared once per representation
(:meth:`Measure.prepare`) → measures and statistics → result rows.

======================  ===========================================================
:mod:`.compare`         :func:`compare`: one pair, many measures; one result row each
:mod:`.table`           :class:`ResultTable` and the result-row columns
:mod:`.grid`            :func:`grid`: every pair of many representations, resumable
:mod:`.tasks`           the unit of work (:class:`Task`), representation keys, pairs
:mod:`.local`           running tasks in this process (prepare-key groups, threads)
:mod:`.cross_moments`   batched cross products shared by the moment measures
:mod:`.distributed`     the Dask backend of :func:`grid`
:mod:`.dask_clients`    :func:`dask_client` and the active Dask client
:mod:`.streaming`       exact second moments from chunks that never fit in memory
:mod:`.joint_moments`   :class:`JointMoments`, the accumulator of the streaming functions
:mod:`.chunk_sources`   row chunks of arrays, ``.npy`` files and Zarr arrays
======================  ===========================================================

The Dask backend depends on the public task interface (:mod:`.tasks`,
:mod:`.local`); :mod:`.grid` chooses between the two and is the only module
that knows both.
"""
